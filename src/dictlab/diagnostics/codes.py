"""Exact codes for a fixed dictionary: the batched nonnegative lasso.

For every data point x_n, a_n = argmin_{a ≥ 0} ½‖x_n − b − Wᵀa‖² + λ·1ᵀa. Solved by FISTA with adaptive
restart, stopped on the duality gap, then *polished*: on the support FISTA found, the KKT equalities
W_S(x_n − b − W_Sᵀa_S) = λ·1 are solved exactly, and the polished code is kept when it is feasible (a_S > 0) and
satisfies the inequalities off the support. Polished codes meet C1 to round-off, which the identities need.

The support systems are solved by a batched Cholesky factorisation that reports failures per point instead of
raising; a point whose support has more atoms than dimensions (its Gram block is singular), or whose block does
not factorise, keeps its FISTA code and goes on iterating.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from dictlab.diagnostics.problem import L1Dictionary, check_lambda


@dataclass(frozen=True)
class LassoResult:
    """Codes and how well they solve the nonnegative lasso."""

    codes: Tensor
    """A: [N, K] ≥ 0."""
    max_relative_gap: float
    """Largest per-point duality gap / primal value."""
    iterations: int
    """FISTA iterations of the slowest batch."""
    polished_fraction: float
    """Share of points whose code came from the exact active-set solve."""
    converged: bool


def dual_gap(Xc: Tensor, codes: Tensor, atoms: Tensor, lam: float) -> tuple[Tensor, Tensor]:
    """Per-point (primal value, duality gap) of the nonnegative lasso; ``Xc = X − b``: [B, D]."""
    R = Xc - codes @ atoms
    primal = 0.5 * R.pow(2).sum(dim=1) + lam * codes.sum(dim=1)
    top = (R @ atoms.T).amax(dim=1)
    scale = torch.where(top > lam, lam / top, torch.ones_like(top))
    theta = R * scale[:, None]
    dual = (theta * Xc).sum(dim=1) - 0.5 * theta.pow(2).sum(dim=1)
    return primal, (primal - dual).clamp_min(0)


def _polish(
    c: Tensor, atoms: Tensor, gram: Tensor | None, codes: Tensor, lam: float, slack: float
) -> tuple[Tensor, Tensor]:
    """Exact active-set solve on each point's current support; returns (codes, valid [B]).

    Support Gram blocks come from ``gram`` [K, K] when given, else from the gathered atoms.
    """
    support = codes > 0
    size = support.sum(dim=1)
    solvable = size <= atoms.shape[1]  # more atoms than dimensions: the support Gram block is singular
    width = int(size.max()) if len(size) else 0
    if width == 0:
        return codes, (c <= lam * (1 + slack)).all(dim=1)
    # Support indices first (stable order), padded with arbitrary indices that are masked out below.
    idx = torch.argsort((~support).to(torch.int8), dim=1, stable=True)[:, :width]
    live = torch.arange(width, device=c.device)[None, :] < size[:, None]
    if gram is not None:
        sub = gram[idx[:, :, None], idx[:, None, :]]
    else:
        gathered = atoms[idx]  # [B, s, D]
        sub = gathered @ gathered.transpose(1, 2)
    eye = torch.eye(width, dtype=c.dtype, device=c.device)
    both = live[:, :, None] & live[:, None, :]
    sub = torch.where(both & solvable[:, None, None], sub, eye)
    rhs = torch.where(live, c.gather(1, idx) - lam, torch.zeros((), dtype=c.dtype, device=c.device))
    factor, info = torch.linalg.cholesky_ex(sub)
    factorised = (info == 0) & solvable
    factor = torch.where(factorised[:, None, None], factor, eye)
    values = torch.cholesky_solve(rhs[:, :, None], factor)[:, :, 0]
    polished = torch.zeros_like(codes)
    polished.scatter_(1, idx, torch.where(live, values, torch.zeros_like(values)))
    feasible = ((values > 0) | ~live).all(dim=1) & factorised & torch.isfinite(values).all(dim=1)
    # Off the support: w_kᵀr ≤ λ, i.e. c − A·G ≤ λ.
    correlation = c - (polished @ atoms) @ atoms.T
    off_ok = (correlation <= lam + slack * (lam + correlation.abs())) | support
    valid = feasible & off_ok.all(dim=1)
    return torch.where(valid[:, None], polished, codes), valid


def _solve_batch(
    Xc: Tensor,
    atoms: Tensor,
    gram: Tensor | None,
    lipschitz: float,
    lam: float,
    init: Tensor | None,
    tol: float,
    max_iter: int,
    check_every: int,
) -> tuple[Tensor, Tensor, int, Tensor]:
    c = Xc @ atoms.T
    codes = torch.zeros_like(c) if init is None else init.clone().clamp_min(0)
    final = codes.clone()
    done = torch.zeros(len(c), dtype=torch.bool, device=c.device)
    gaps = torch.full((len(c),), float("inf"), dtype=c.dtype, device=c.device)
    iterations = 0
    todo = torch.arange(len(c), device=c.device)
    x, y, t = codes, codes.clone(), torch.ones(len(c), dtype=c.dtype, device=c.device)
    slack = 1e3 * torch.finfo(c.dtype).eps
    while iterations < max_iter and len(todo):
        cc = c[todo]
        for _ in range(check_every):
            grad = y @ gram - cc if gram is not None else (y @ atoms) @ atoms.T - cc
            x_new = (y - (grad + lam) / lipschitz).clamp_min(0)
            t_new = (1 + torch.sqrt(1 + 4 * t * t)) / 2
            # Gradient-based adaptive restart (O'Donoghue & Candès).
            restart = ((y - x_new) * (x_new - x)).sum(dim=1) > 0
            t_new = torch.where(restart, torch.ones_like(t_new), t_new)
            momentum = torch.where(restart, torch.zeros_like(t), (t - 1) / t_new)
            y = x_new + momentum[:, None] * (x_new - x)
            x, t = x_new, t_new
        iterations += check_every
        primal, gap = dual_gap(Xc[todo], x, atoms, lam)
        rel = gap / primal.clamp_min(torch.finfo(c.dtype).tiny)
        gaps[todo] = rel
        polished, valid = _polish(cc, atoms, gram, x, lam, slack)
        finished = valid | (rel < tol)
        final[todo] = torch.where(valid[:, None], polished, x)
        done[todo[valid]] = True
        if valid.any():
            p_primal, p_gap = dual_gap(Xc[todo[valid]], polished[valid], atoms, lam)
            gaps[todo[valid]] = p_gap / p_primal.clamp_min(torch.finfo(c.dtype).tiny)
        keep = ~finished
        todo, x, y, t = todo[keep], x[keep], y[keep], t[keep]
    return final, gaps, iterations, done


def nonnegative_lasso(
    X: Tensor,
    dictionary: L1Dictionary,
    lam: float,
    *,
    init: Tensor | None = None,
    tol: float = 1e-12,
    max_iter: int = 20_000,
    batch_size: int = 8192,
    check_every: int = 25,
) -> LassoResult:
    """Exact codes A = argmin_{A ≥ 0} ½‖X − A·W − b‖² + λ·ΣA for ``X: [N, D]``.

    ``tol`` bounds each point's relative duality gap; points whose polished code satisfies the KKT conditions
    finish early. ``init`` warm-starts from codes [N, K]. Work in float64 for identities at 1e-10.
    """
    lam = check_lambda(lam)
    atoms = dictionary.atoms
    # ∇ = A·G − c costs B·K² through the Gram matrix G = WWᵀ and 2·B·K·D through the residual; take the cheaper.
    gram = atoms @ atoms.T if atoms.shape[0] <= 2 * atoms.shape[1] else None
    # ‖W‖₂²: the largest eigenvalue of the smaller of WWᵀ [K, K] and WᵀW [D, D].
    small = gram if gram is not None else atoms.T @ atoms
    lipschitz = float(torch.linalg.eigvalsh(small)[-1]) * (1 + 1e-9)
    chunks, gaps, polished, iterations = [], [], [], 0
    Xc_all = dictionary.centered(X)
    for start in range(0, len(X), batch_size):
        Xc = Xc_all[start : start + batch_size]
        warm = None if init is None else init[start : start + batch_size]
        codes, gap, its, done = _solve_batch(Xc, atoms, gram, lipschitz, lam, warm, tol, max_iter, check_every)
        chunks.append(codes)
        gaps.append(gap)
        polished.append(done)
        iterations = max(iterations, its)
    gap_all = torch.cat(gaps)
    done_all = torch.cat(polished)
    max_gap = float(gap_all.max())
    return LassoResult(
        codes=torch.cat(chunks),
        max_relative_gap=max_gap,
        iterations=iterations,
        polished_fraction=float(done_all.float().mean()),
        converged=bool(max_gap <= tol or done_all.all()),
    )
