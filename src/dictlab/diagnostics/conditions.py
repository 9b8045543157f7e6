"""First-order (KKT) conditions C1–C3 of (P_K) and the identities E1–E4 they imply.

With residuals R = X − A·W − b and g_kn = w_kᵀr_n / λ:

- C1 (codes): g_kn ≤ 1 everywhere, = 1 where a_nk > 0.
- C2 (atoms): (I − w_kw_kᵀ)·Rᵀα_k = 0.
- C3 (bias): Σ_n r_n = 0.
- E1: Rᵀα_k = λ‖α_k‖₁·w_k (C2 plus the radial part of C1).
- E2: Σ_n a_nk·g_jn = ‖α_k‖₁·c_jk for every pair (j, k), with c_jk = w_jᵀw_k.
- E3: (1 − c_jk)·‖α_k‖₁ = Σ_{n ∈ Z_j} μ_jn·a_nk with μ_jn = 1 − g_jn ≥ 0 and Z_j where atom j is silent.
- E4 (bias): p_jn = μ_jn / N is a probability distribution on Z_j (Σ_n p_jn = 1), so E3 reads
  (1 − c_jk)·ā_k = Σ_{Z_j} p_jn·a_nk — the same distribution for every k.
- Bias identity: Σ_{n ∈ Z_k} w_kᵀr_n = −λ|S_k|.

Every violation is made relative (to λ, λ‖α_k‖₁, ‖α_k‖₁ or N λ) so one tolerance serves all of them.
"""

from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from dictlab.diagnostics.pairwise import pair_cosines
from dictlab.diagnostics.problem import L1Dictionary
from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.diagnostics.summary import Check

DENSE_PAIR_LIMIT = 50_000_000
"""Largest N·K for which E3/E4 are checked on every pair with dense [N, K] products."""


@dataclass
class ConditionArrays:
    """Per-entry / per-atom violations behind the checks (for histograms and further analysis)."""

    residuals: Tensor
    """R: [N, D]."""
    g_active: Tensor
    """g_kn at every support entry: [nnz]."""
    c1_inactive: Tensor
    """max_k (g_kn − 1)_+ over the checked points: [n_checked]."""
    c1_points: Tensor
    """Which points C1-inactive was checked on: [n_checked]."""
    c2: Tensor
    """‖(I − w_kw_kᵀ)Rᵀα_k‖ / (λ‖α_k‖₁) for live atoms: [K_live]."""
    live: Tensor
    """Ids of atoms with ‖α_k‖₁ > 0: [K_live]."""


def _pairs_without_diagonal(values: Tensor) -> tuple[Tensor, Tensor]:
    """Flatten a [K, K] matrix without its diagonal into (values [K(K−1)], ids [K(K−1), 2] as (j, k))."""
    K = values.shape[0]
    j, k = torch.meshgrid(torch.arange(K), torch.arange(K), indexing="ij")
    off = j != k
    return values[off], torch.stack([j[off], k[off]], dim=1)


def e3_pairs(
    codes: SparseCodes, dictionary: L1Dictionary, arrays: ConditionArrays, lam: float, pairs: Tensor
) -> tuple[Tensor, Tensor]:
    """E3 both sides for the given ordered pairs [M, 2] (j, k): ((1 − c_jk)‖α_k‖₁, Σ_{Z_j} μ_jn a_nk).

    Uses Σ_{Z_j} μ_jn a_nk = ‖α_k‖₁ − Σ_n g_jn a_nk − Σ_{S_j ∩ S_k} (1 − g_jn) a_nk; the first sum is one row of
    (Aᵀ R) Wᵀ / λ and the second runs over co-active points only.
    """
    W = dictionary.atoms
    pull = codes.t_matmul(arrays.residuals)  # [K, D]
    j, k = pairs[:, 0], pairs[:, 1]
    mass = codes.mass
    cos = pair_cosines(W, j, k)
    lhs = (1 - cos) * mass[k]
    through_g = (pull[k] * W[j]).sum(dim=1) / lam
    csc_a = codes.scipy_csc()
    csc_mu = sp.csc_array(((1 - arrays.g_active).numpy(), (codes.rows.numpy(), codes.cols.numpy())), shape=csc_a.shape)
    overlap = np.zeros(len(pairs))
    for i, (jj, kk) in enumerate(pairs.tolist()):
        pj, mu = (
            csc_mu.indices[csc_mu.indptr[jj] : csc_mu.indptr[jj + 1]],
            csc_mu.data[csc_mu.indptr[jj] : csc_mu.indptr[jj + 1]],
        )
        pk, ak = codes.column(kk, csc_a)
        _, ij, ik = np.intersect1d(pj, pk, assume_unique=True, return_indices=True)
        overlap[i] = float((mu[ij] * ak[ik]).sum())
    rhs = mass[k] - through_g - torch.from_numpy(overlap).to(mass.dtype)
    return lhs, rhs


def check_conditions(
    X: Tensor,
    dictionary: L1Dictionary,
    codes: SparseCodes,
    lam: float,
    *,
    tolerance: float = 1e-5,
    max_dense_points: int = 8192,
    pairs: Tensor | None = None,
    generator: torch.Generator | None = None,
    n_worst: int = 5,
) -> tuple[list[Check], ConditionArrays]:
    """Evaluate C1–C3, E1–E4 and the bias identity on data X [N, D] with codes A [N, K].

    C1's inequality off the support needs R·Wᵀ [N, K]; beyond ``max_dense_points`` points it runs on a random
    subsample (the check's ``over`` says so). E3/E4 run on every pair when N·K ≤ 5·10⁷, else on ``pairs`` [M, 2]
    (pairs whose k is dead are skipped). Each check lists its ``n_worst`` largest violations.
    """
    build = partial(Check.build, n_worst=n_worst)
    W = dictionary.atoms.to(X.dtype)
    N, K = codes.n_points, codes.n_atoms
    R = dictionary.centered(X) - codes.matmul(W)
    g_active = codes.entry_dots(R, W) / lam
    checks: list[Check] = []
    entry_ids = torch.stack([codes.rows, codes.cols], dim=1)
    checks.append(
        build(
            "C1 active",
            "w_kᵀr_n = λ wherever a_nk > 0",
            "support entries (n, k); |g − 1|",
            (g_active - 1).abs(),
            tolerance,
            entry_ids,
        )
    )
    if max_dense_points < N:
        points = torch.randperm(N, generator=generator)[:max_dense_points].sort().values
        over = f"{max_dense_points} random points of {N}; max_k (g − 1)_+"
    else:
        points = torch.arange(N)
        over = "points; max_k (g − 1)_+"
    c1_off = torch.empty(len(points), dtype=X.dtype)
    is_checked = torch.full((N,), -1, dtype=torch.long)
    is_checked[points] = torch.arange(len(points))
    for lo in range(0, len(points), 4096):
        sub = points[lo : lo + 4096]
        G = R[sub] @ W.T / lam
        keep = is_checked[codes.rows] >= lo
        keep &= is_checked[codes.rows] < lo + len(sub)
        G[is_checked[codes.rows[keep]] - lo, codes.cols[keep]] = 1.0  # active entries are C1-active's business
        c1_off[lo : lo + len(sub)] = (G - 1).clamp_min(0).amax(dim=1)
    checks.append(build("C1 inactive", "w_kᵀr_n ≤ λ wherever a_nk = 0", over, c1_off, tolerance, points))

    mass = codes.mass
    live = torch.nonzero(mass > 0).flatten()
    pull = codes.t_matmul(R)  # [K, D]
    radial = (pull * W).sum(dim=1)
    tangential = (pull - radial[:, None] * W).norm(dim=1)
    scale = lam * mass[live]
    c2 = tangential[live] / scale
    checks.append(build("C2", "(I − w_kw_kᵀ)Rᵀα_k = 0", "live atoms; ‖·‖/(λ‖α_k‖₁)", c2, tolerance, live))
    if dictionary.bias is not None:
        c3 = R.sum(dim=0).norm() / (N * lam)
        checks.append(build("C3", "Σ_n r_n = 0", "the bias; ‖Σr‖/(Nλ)", c3[None], tolerance))
    e1_error = pull[live] / lam - mass[live, None] * W[live]  # [K_live, D]
    checks.append(
        build(
            "E1",
            "Rᵀα_k = λ‖α_k‖₁w_k",
            "live atoms; ‖·‖/(λ‖α_k‖₁)",
            e1_error.norm(dim=1) / mass[live],
            tolerance,
            live,
        )
    )
    # E2: (Σ_n a_nk g_jn − ‖α_k‖₁c_jk)/‖α_k‖₁ = e1_k·w_j/‖α_k‖₁ — blocks of atoms k against all j.
    e2_worst = torch.empty(len(live), dtype=X.dtype)
    e2_arg = torch.empty(len(live), dtype=torch.long)
    for lo in range(0, len(live), 2048):
        block = (e1_error[lo : lo + 2048] @ W.T).abs() / mass[live[lo : lo + 2048], None]
        block[torch.arange(len(block)), live[lo : lo + 2048]] = 0.0
        e2_worst[lo : lo + 2048], e2_arg[lo : lo + 2048] = block.max(dim=1)
    checks.append(
        build(
            "E2",
            "Σ_n a_nk g_jn = ‖α_k‖₁c_jk",
            "live atoms k, worst j; |·|/‖α_k‖₁",
            e2_worst,
            tolerance,
            torch.stack([e2_arg, live], dim=1),
        )
    )

    arrays = ConditionArrays(R, g_active, c1_off, points, c2, live)
    if N * K <= DENSE_PAIR_LIMIT:
        A = codes.to_dense().to(X.dtype)
        G = R @ W.T / lam
        mu_silent = (1 - G) * (A == 0)
        rhs_all = mu_silent.T @ A  # [j, k]
        lhs_all = (1 - W @ W.T) * mass[None, :]
        e3_values, e3_ids = _pairs_without_diagonal((lhs_all - rhs_all).abs() / mass.clamp_min(1e-300)[None, :])
        e3_values = e3_values[mass[e3_ids[:, 1]] > 0]
        e3_ids = e3_ids[mass[e3_ids[:, 1]] > 0]
        over_pairs = "all ordered pairs (j, k), k live; |lhs − rhs|/‖α_k‖₁"
    elif pairs is not None and len(pairs := pairs[mass[pairs[:, 1]] > 0]):
        lhs, rhs = e3_pairs(codes, dictionary, arrays, lam, pairs)
        e3_values, e3_ids = (lhs - rhs).abs() / mass[pairs[:, 1]].clamp_min(1e-300), pairs
        over_pairs = f"{len(pairs)} requested or flagged pairs; |lhs − rhs|/‖α_k‖₁"
    else:
        e3_values, e3_ids, over_pairs = None, None, ""
    if e3_values is not None:
        name = "E4" if dictionary.bias is not None else "E3"
        statement = (
            "(1 − c_jk)ā_k = Σ_{Z_j} p_jn a_nk, p_jn = (1 − g_jn)/N"
            if dictionary.bias is not None
            else "(1 − c_jk)‖α_k‖₁ = Σ_{Z_j} μ_jn a_nk, μ_jn = 1 − g_jn"
        )
        checks.append(build(name, statement, over_pairs, e3_values, tolerance, e3_ids))
    if dictionary.bias is not None:
        # Σ_{n ∈ Z_j} g_jn = w_jᵀΣR/λ − Σ_{S_j} g_jn; then Σ_n p_jn = (|Z_j| − Σ_{Z_j} g_jn)/N and the bias identity.
        g_total = (W @ R.sum(dim=0)) / lam
        g_on_support = torch.zeros(K, dtype=X.dtype).index_add_(0, codes.cols, g_active)
        g_silent = g_total - g_on_support
        silent = N - codes.counts.to(X.dtype)
        p_sum = (silent - g_silent) / N
        checks.append(
            build(
                "E4 Σp = 1",
                "p_jn = (1 − g_jn)/N sums to 1 over Z_j",
                "atoms; |Σp − 1|",
                (p_sum - 1).abs(),
                tolerance,
            )
        )
        counts = codes.counts[live].to(X.dtype)
        checks.append(
            build(
                "bias identity",
                "Σ_{n∈Z_k} w_kᵀr_n = −λ|S_k|",
                "live atoms; |·|/(λ|S_k|)",
                (g_silent[live] + counts).abs() / counts,
                tolerance,
                live,
            )
        )
    return checks, arrays
