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
from dictlab.diagnostics.sparse_codes import SparseCodes, csr_tensor
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
    pull: Tensor
    """Aᵀ·R, row k = Σ_n a_nk r_n: [K, D]."""
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
    pull = arrays.pull
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


C1_BLOCK = 4096
"""Points per block of R·Wᵀ in C1 off the support."""
E2_BLOCK = 2048
"""Atoms per block of e1·Wᵀ in E2."""
CONFIDENCE = 0.95
"""Confidence of the sampling bounds."""


def _c1_off_support(
    R: Tensor, W: Tensor, codes: SparseCodes, lam: float, max_points: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor, str, str | None]:
    """max_k (g_kn − 1)_+ off the support at the checked points: (values [m], points [m], over, error bound).

    Points whose bound ‖r_n‖·max_k‖w_k‖/λ is ≤ 1 cannot violate and count as checked with value 0; beyond
    ``max_points`` uncertified points a random sample of them is evaluated and the bound says what it rules out.
    R·Wᵀ runs in fp32; the inactive entries whose g comes within the fp32 rounding bound of 1 are recomputed in
    fp64 (a sampled product), so every value is exact.
    """
    N = len(R)
    w_max = float(W.norm(dim=1).max())
    certified = R.norm(dim=1) * w_max <= lam
    open_points = torch.nonzero(~certified).flatten()
    n_open = len(open_points)
    sampled = n_open > max_points
    if sampled:
        pick = torch.randperm(n_open, generator=generator)[:max_points]
        open_points = open_points[pick].sort().values
    values = torch.zeros(len(open_points), dtype=R.dtype)
    W32 = W.float()
    for lo in range(0, len(open_points), C1_BLOCK):
        sub = open_points[lo : lo + C1_BLOCK]
        entries, owner = codes.entries_of(sub)
        G = R[sub].float() @ W32.T / lam  # fp32 screen; exact fp64 entries where it cannot decide
        G[owner, codes.cols[entries]] = -torch.inf  # active entries are C1-active's business
        slack = 2 * (W.shape[1] + 2) * 2.0**-24 * R[sub].norm(dim=1) * w_max / lam  # bound on fp32 rounding
        threshold = (1 - slack).float()[:, None]
        rows, cols = torch.nonzero(threshold < G, as_tuple=True)  # row-major: CSR order
        if len(rows):
            offsets = torch.zeros(len(sub) + 1, dtype=torch.long)
            offsets[1:] = torch.cumsum(torch.bincount(rows, minlength=len(sub)), 0)
            pattern = csr_tensor(offsets, cols, torch.zeros(len(rows), dtype=R.dtype), (len(sub), len(W)))
            exact = torch.sparse.sampled_addmm(pattern, R[sub], W.T, beta=0.0).values() / lam
            worst = torch.zeros(len(sub), dtype=R.dtype).scatter_reduce_(0, rows, (exact - 1).clamp_min(0), "amax")
            values[lo : lo + len(sub)] = worst
    n_certified = N - n_open
    if not sampled:
        points = torch.cat([torch.nonzero(certified).flatten(), open_points])
        order = torch.argsort(points)
        values = torch.cat([torch.zeros(n_certified, dtype=R.dtype), values])[order]
        return values, points[order], f"all {N} points ({n_certified} certified by ‖r_n‖ ≤ λ); max_k (g − 1)_+", None
    share = 1 - (1 - CONFIDENCE) ** (1 / max_points)
    over = (
        f"{max_points} random points of the {n_open} with ‖r_n‖ > λ (the other {n_certified} of {N} hold by "
        "‖r_n‖ ≤ λ); max_k (g − 1)_+"
    )
    bound = (
        f"no violation in the sample ⇒ fewer than {share:.2%} of the {n_open} uncertified points violate "
        f"({CONFIDENCE:.0%} confidence); a violation in the sample is a real one"
    )
    return values, open_points, over, bound


def _e2_worst(e1_error: Tensor, W: Tensor, live: Tensor, mass: Tensor) -> tuple[Tensor, Tensor]:
    """E2 per live atom k: (max_j |e1_k·w_j|/‖α_k‖₁ over j ≠ k [K_live], the worst j [K_live]).

    The K_live × K product runs in fp32 to find the worst j; its value is then recomputed in fp64. Rounding can
    pick a j whose value is below the true maximum by at most ~D·2⁻²³·‖e1_k‖/‖α_k‖₁ (E1 bounds E2 anyway).
    """
    W32 = W.float()
    arg = torch.empty(len(live), dtype=torch.long)
    for lo in range(0, len(live), E2_BLOCK):
        block = (e1_error[lo : lo + E2_BLOCK].float() @ W32.T).abs_()
        block[torch.arange(len(block)), live[lo : lo + E2_BLOCK]] = -1.0
        arg[lo : lo + E2_BLOCK] = block.argmax(dim=1)
    return (e1_error * W[arg]).sum(dim=1).abs() / mass, arg


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

    C1's inequality off the support needs R·Wᵀ [N, K]: points with ‖r_n‖·max‖w_k‖ ≤ λ satisfy it for every k
    (Cauchy–Schwarz); of the others at most ``max_dense_points`` random ones are checked, and the check states
    the share of violating points that sample rules out. E3/E4 run on every pair when N·K ≤ 5·10⁷, else on
    ``pairs`` [M, 2] (pairs whose k is dead are skipped). Each check lists its ``n_worst`` largest violations.
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
    c1_off, points, over, bound = _c1_off_support(R, W, codes, lam, max_dense_points, generator)
    checks.append(
        build("C1 inactive", "w_kᵀr_n ≤ λ wherever a_nk = 0", over, c1_off, tolerance, points, error_bound=bound)
    )

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
    e2_worst, e2_arg = _e2_worst(e1_error, W, live, mass[live])
    checks.append(
        build(
            "E2",
            "Σ_n a_nk g_jn = ‖α_k‖₁c_jk",
            "live atoms k, worst j (found in fp32, valued in fp64); |·|/‖α_k‖₁",
            e2_worst,
            tolerance,
            torch.stack([e2_arg, live], dim=1),
        )
    )

    arrays = ConditionArrays(R, g_active, pull, c1_off, points, c2, live)
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
