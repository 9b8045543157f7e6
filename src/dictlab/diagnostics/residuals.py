"""Structure of residuals at a (P_K) optimum: shrinkage, the spare-atom test and split pressure.

- Per point (C1): W_Sᵀr_n = λ·1 on the active set S, so r_n carries a deterministic shrinkage component
  λ·W_S(W_SᵀW_S)⁻¹1 in span(W_S); ⟨r_n, A_n·W⟩ = λ‖a_n‖₁ > 0. Residuals are predictable from the codes.
- Spare atom: a new atom u = r_n/‖r_n‖ lowers the loss whenever ‖r_n‖ > λ; at the wide limit every ‖r_n‖ ≤ λ.
- Split pressure of atom k: SP_k = max_{‖v‖=1, v ⊥ w_k} Σ_n a_nk|vᵀr_n|, the first-order gain of splitting w_k
  into w_k ± εv. Zero iff every k-active residual equals λw_k. Estimated by power iterations on the code-weighted
  residual covariance followed by the sign fixed-point v ← normalise(P_k^⊥ Σ_n a_nk sign(vᵀr_n) r_n), which never
  decreases the objective, so the reported value is a lower bound on SP_k.
"""

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.diagnostics.summary import Distribution, Offender

POINT_CHUNK = 512
"""Points per batched solve (the gathered supports are [chunk, L0, D])."""


class ResidualSummary(BaseModel):
    """Residual statistics relative to λ."""

    residual_norm_over_lambda: Distribution = Field(description="‖r_n‖/λ over points.")
    fraction_above_lambda: float = Field(description="Share of points with ‖r_n‖ > λ (a new atom there helps).")
    worst_points: list[Offender] = Field(description="Points with the largest ‖r_n‖/λ.")
    shrinkage_share: Distribution = Field(
        description="‖P_S r_n‖²/‖r_n‖²: the share of each active point's residual inside span(W_S)."
    )
    shrinkage_deviation: Distribution = Field(
        description="‖P_S r_n − λW_S(W_SᵀW_S)⁻¹1‖/λ: distance of that part from the predicted shrinkage."
    )
    reconstruction_alignment: Distribution = Field(
        description="⟨r_n, A_n·W⟩/(λ‖a_n‖₁) over active points; 1 at a stationary point."
    )
    split_pressure: Distribution = Field(description="SP_k/(λ‖α_k‖₁) over live atoms (lower-bound estimate).")
    worst_split_pressure: list[Offender]


def _support_projections(R: Tensor, codes: SparseCodes, atoms: Tensor, lam: float) -> tuple[Tensor, Tensor]:
    """Per active point: (‖P_S r‖²/‖r‖², ‖P_S r − λW_S(W_SᵀW_S)⁻¹1‖/λ) via batched solves on padded supports."""
    l0 = codes.l0_per_point
    active = torch.nonzero(l0 > 0).flatten()
    crow = torch.zeros(codes.n_points + 1, dtype=torch.long)
    crow[1:] = torch.cumsum(l0, 0)
    share = torch.empty(len(active), dtype=R.dtype)
    deviation = torch.empty(len(active), dtype=R.dtype)
    for lo in range(0, len(active), POINT_CHUNK):
        pts = active[lo : lo + POINT_CHUNK]
        width = int(l0[pts].max())
        slot = torch.arange(width)
        live = slot[None, :] < l0[pts, None]
        entry = (crow[pts, None] + slot[None, :]).clamp_max(codes.nnz - 1)
        idx = torch.where(live, codes.cols[entry], torch.zeros_like(entry))
        WS = atoms[idx] * live[..., None]  # [B, s, D]
        gram = WS @ WS.transpose(1, 2) + torch.diag_embed((~live).to(R.dtype))
        r = R[pts]
        proj = (WS @ r[:, :, None])[..., 0]  # W_S r: [B, s]
        rhs = torch.stack([proj, lam * live.to(R.dtype)], dim=2)  # [B, s, 2]
        solution, info = torch.linalg.solve_ex(gram, rhs)
        singular = info != 0  # linearly dependent support atoms: least squares instead
        if singular.any():
            solution[singular] = torch.linalg.lstsq(gram[singular], rhs[singular]).solution
        coef, coef_pred = solution[..., 0], solution[..., 1]
        inside = (coef[:, None, :] @ WS)[:, 0, :]
        predicted = (coef_pred[:, None, :] @ WS)[:, 0, :]
        share[lo : lo + len(pts)] = inside.pow(2).sum(dim=1) / r.pow(2).sum(dim=1).clamp_min(1e-300)
        deviation[lo : lo + len(pts)] = (inside - predicted).norm(dim=1) / lam
    return share, deviation


def split_pressure(
    R: Tensor,
    codes: SparseCodes,
    atoms: Tensor,
    *,
    power_iterations: int = 4,
    sign_iterations: int = 6,
    generator: torch.Generator | None = None,
) -> Tensor:
    """SP_k (lower-bound estimate) for every atom: [K]; 0 for dead atoms.

    Atom by atom: its active residuals R_S [|S_k|, D] and codes a are gathered once, then power iterations on
    the code-weighted covariance P(R_Sᵀ diag(a) R_S)P (P projects out w_k) and sign iterations run on that block.
    """
    K, D = atoms.shape
    out = torch.zeros(K, dtype=R.dtype)
    csc = codes.scipy_csc()
    start = torch.randn(K, D, generator=generator, dtype=R.dtype)
    for k in torch.nonzero(codes.counts > 0).flatten().tolist():
        points, values = codes.column(k, csc)
        block = R[torch.from_numpy(points)]  # [m, D]
        a = torch.from_numpy(values).to(R.dtype)
        w = atoms[k]
        block = block - (block @ w)[:, None] * w  # only v ⊥ w_k matters: project the residuals once
        v = start[k] - (start[k] @ w) * w
        v = v / v.norm().clamp_min(1e-300)
        for _ in range(power_iterations):
            v = block.T @ (a * (block @ v))
            v = v / v.norm().clamp_min(1e-300)
        best = float(a @ (block @ v).abs())
        for _ in range(sign_iterations):
            candidate = block.T @ (a * torch.sign(block @ v))
            norm = candidate.norm()
            if norm == 0:
                break
            candidate = candidate / norm
            value = float(a @ (block @ candidate).abs())
            if value <= best:
                break
            v, best = candidate, value
        out[k] = best
    return out


def residual_summary(
    R: Tensor,
    codes: SparseCodes,
    atoms: Tensor,
    lam: float,
    *,
    generator: torch.Generator | None = None,
    n_worst: int = 5,
) -> tuple[ResidualSummary, dict[str, Tensor]]:
    """Residual structure of (R [N, D], A, W [K, D]) at λ; also returns the arrays behind the summary."""
    norm_ratio = R.norm(dim=1) / lam
    share, deviation = _support_projections(R, codes, atoms, lam)
    recon = codes.matmul(atoms)
    l1 = codes.l1_per_point
    active = l1 > 0
    alignment = (R[active] * recon[active]).sum(dim=1) / (lam * l1[active])
    sp = split_pressure(R, codes, atoms, generator=generator)
    mass = codes.mass.to(R.dtype)
    live = torch.nonzero(mass > 0).flatten()
    sp_rel = sp[live] / (lam * mass[live])
    order = torch.argsort(norm_ratio, descending=True)[:n_worst]
    sp_order = torch.argsort(sp_rel, descending=True)[:n_worst]
    summary = ResidualSummary(
        residual_norm_over_lambda=Distribution.of(norm_ratio),
        fraction_above_lambda=float((norm_ratio > 1 + 1e-9).double().mean()),
        worst_points=[Offender(where=[int(i)], value=float(norm_ratio[i])) for i in order],
        shrinkage_share=Distribution.of(share),
        shrinkage_deviation=Distribution.of(deviation),
        reconstruction_alignment=Distribution.of(alignment),
        split_pressure=Distribution.of(sp_rel),
        worst_split_pressure=[Offender(where=[int(live[i])], value=float(sp_rel[i])) for i in sp_order],
    )
    return summary, {"residual_norm_over_lambda": norm_ratio, "split_pressure": sp_rel, "split_atoms": live}
