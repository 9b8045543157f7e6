"""The pairwise two-sided convex-hull condition, for every pair of atoms, in its 1-D and LP forms.

At a stationary point of (P_K) with a bias, E4 says that for atoms j ≠ k the point −c_jk lies in the convex hull of
k's normalised codes ã_kn = (a_nk − ā_k)/(ā_k − min_m a_mk) over the points where j is silent, and the same with
j and k swapped. Since ã ≥ −1 (attained where both are silent), the informative half is the 1-D condition

    M_{k|j} = max_{n ∈ Z_j} a_nk ≥ (1 − c_jk)·ā_k        (margin_{k|j} = M_{k|j} / ((1 − c_jk)ā_k) − 1 ≥ 0)

plus min_{n ∈ Z_j} a_nk ≤ (1 − c_jk)·ā_k, which only binds when k is active wherever j is silent. Without a bias
the hull becomes a cone and the 1-D condition reduces to M_{k|j} > 0. A child that fires only with its parent has
M = 0 and fails both: hierarchical pairs cannot be stationary.

Scaling. M_{k|j} equals k's largest code unless j is active at that very point, so it is k's maximum for all but
≤ L0 "exception" partners per atom, which a walk down k's sorted codes resolves exactly. For the rest the margin
depends on j only through c_jk, so one blocked pass over W·Wᵀ finds every failure and each atom's worst partner.
Cost: O(nnz log nnz + K²·D), no [K, K] or [N, K] matrix is ever held.
"""

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import BaseModel, Field
from scipy.optimize import linprog
from torch import Tensor

from dictlab.diagnostics.sparse_codes import SparseCodes, csr_tensor
from dictlab.diagnostics.summary import Distribution

GRAM_BLOCK = 2048
EXACT_GRAM_ATOMS = 4096
WALK_ROUNDS = 256
FP32_MARGIN = 1e-3
"""Pairs screened on fp32 cosines are kept down to their threshold minus this (fp32 rounding of a unit dot
product is ≲ 1e-4); their exact cosines decide."""


class PairVerdict(BaseModel):
    """Both directions of the 1-D hull test for one unordered pair of atoms."""

    j: int
    k: int
    support_j: int = Field(description="|S_j|, points where atom j is active.")
    support_k: int = Field(description="|S_k|.")
    cosine: float = Field(description="c_jk = w_jᵀw_k.")
    max_k_where_j_silent: float = Field(description="M_{k|j} = max_{n ∈ Z_j} a_nk.")
    max_j_where_k_silent: float = Field(description="M_{j|k} = max_{n ∈ Z_k} a_nj.")
    margin_k_given_j: float = Field(description="M_{k|j} / ((1 − c_jk)ā_k) − 1.")
    margin_j_given_k: float = Field(description="M_{j|k} / ((1 − c_jk)ā_j) − 1.")
    nested: bool = Field(description="One atom's support lies inside the other's (M = 0 one way).")
    lower_end_fails: bool = Field(
        default=False,
        description="With a bias: one atom is active wherever the other is silent, always above its bound.",
    )
    passes: bool


class PairwiseSummary(BaseModel):
    """The 1-D hull test over all pairs of live atoms."""

    form: str = Field(description="'hull' (with a bias) or 'cone' (without).")
    n_live_atoms: int
    n_pairs: int = Field(description="Unordered pairs of live atoms tested.")
    n_failing_pairs: int = Field(description="Pairs failing in at least one direction.")
    n_nested_pairs: int = Field(description="Pairs with nested supports (M = 0 in one direction).")
    n_exception_pairs: int = Field(description="Ordered pairs resolved by the walk (co-active at k's maximum).")
    exception_margins: Distribution = Field(description="Margins of the co-active (exception) ordered pairs.")
    worst: list[PairVerdict]
    seconds: float


@dataclass
class PairwiseResult:
    """Summary plus the arrays behind it."""

    summary: PairwiseSummary
    failing_pairs: Tensor
    """[F, 2] (j, k) with j < k, failing in at least one direction."""
    antipodal_pairs: Tensor
    """[P, 2] (j, k), j < k, with c_jk below the antipodal threshold."""
    antipodal_cosines: Tensor
    extra: dict[str, Tensor] = field(default_factory=dict)
    close_pairs: Tensor = field(default_factory=lambda: torch.zeros(0, 2, dtype=torch.long))
    """[C, 2] (j, k), j < k, live, whose screened cosine is ≥ ``close_cosine`` − FP32_MARGIN (when asked for)."""


def close_pairs_in_block(block: np.ndarray, ks: np.ndarray, live: np.ndarray, min_cosine: float) -> np.ndarray:
    """Pairs (k, j) with j > k of one block of W·Wᵀ (rows: atoms ``ks``, columns: atoms ``live``) whose cosine is
    ≥ ``min_cosine`` − FP32_MARGIN: [P, 2]."""
    r, c = np.nonzero(block >= min_cosine - FP32_MARGIN)
    kk, jj = ks[r], live[c]
    upper = jj > kk
    return np.stack([kk[upper], jj[upper]], axis=1)


@dataclass
class _Columns:
    """Atom-major view of the codes, each column sorted by decreasing value."""

    csc: sp.csc_array
    sorted_points: np.ndarray
    sorted_values: np.ndarray
    indptr: np.ndarray
    keys: np.ndarray
    """Sorted n·K + k for every support entry, for membership tests."""

    @classmethod
    def of(cls, codes: SparseCodes) -> "_Columns":
        csc = codes.scipy_csc()
        csc.sort_indices()
        col_of = np.repeat(np.arange(codes.n_atoms), np.diff(csc.indptr))
        order = np.lexsort((np.negative(csc.data), col_of))
        keys = np.sort(codes.rows.numpy() * codes.n_atoms + codes.cols.numpy())
        return cls(csc, csc.indices[order], csc.data[order], csc.indptr, keys)

    def active(self, points: np.ndarray, atoms: np.ndarray, n_atoms: int) -> np.ndarray:
        key = points.astype(np.int64) * n_atoms + atoms
        pos = np.searchsorted(self.keys, key)
        pos = np.minimum(pos, len(self.keys) - 1)
        return self.keys[pos] == key

    def extreme_where_silent(self, k: int, j: int, highest: bool, empty: float) -> float:
        """max (or min) of a_nk over k's active points where j is silent, by set difference; ``empty`` if none."""
        lo, hi = self.indptr[k], self.indptr[k + 1]
        pts, vals = self.csc.indices[lo:hi], self.csc.data[lo:hi]
        jl, jh = self.indptr[j], self.indptr[j + 1]
        outside = ~np.isin(pts, self.csc.indices[jl:jh], assume_unique=True)
        if not outside.any():
            return empty
        return float(vals[outside].max() if highest else vals[outside].min())


def _first_where_silent(
    cols: _Columns, pair_j: np.ndarray, pair_k: np.ndarray, n_atoms: int, *, highest: bool, empty: float, skip: int = 0
) -> np.ndarray:
    """For ordered pairs (j, k): a_nk at the first of k's active points, in decreasing (``highest``) or increasing
    order of a_nk, where j is silent, i.e. max (min) of k's nonzero codes over Z_j; ``empty`` when there is none.

    ``skip`` leading points are known to have j active. Vectorised over pairs; walks longer than WALK_ROUNDS
    finish by set difference.
    """
    result = np.full(len(pair_j), np.nan)
    todo = np.arange(len(pair_j))
    step = np.full(len(pair_j), skip, dtype=np.int64)  # rank in k's sorted column of the next point to try
    for _ in range(WALK_ROUNDS):
        if not len(todo):
            break
        kk, jj = pair_k[todo], pair_j[todo]
        length = cols.indptr[kk + 1] - cols.indptr[kk]
        exhausted = step[todo] >= length
        result[todo[exhausted]] = empty
        todo, kk, jj = todo[~exhausted], kk[~exhausted], jj[~exhausted]
        rank = step[todo] if highest else length[~exhausted] - 1 - step[todo]
        pos = cols.indptr[kk] + rank
        hit = cols.active(cols.sorted_points[pos], jj, n_atoms)
        result[todo[~hit]] = cols.sorted_values[pos[~hit]]
        todo = todo[hit]
        step[todo] += 1
    for i in todo:
        result[i] = cols.extreme_where_silent(int(pair_k[i]), int(pair_j[i]), highest, empty)
    return result


def _walk_exceptions(cols: _Columns, codes: SparseCodes, live: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered (j, k) with j active at k's maximum, and their exact M_{k|j} (0 when S_k ⊆ S_j)."""
    start = cols.indptr[:-1]
    top_point = np.where(
        cols.indptr[1:] > start, cols.sorted_points[np.minimum(start, len(cols.sorted_points) - 1)], -1
    )
    crow = np.zeros(codes.n_points + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes.rows.numpy(), minlength=codes.n_points), out=crow[1:])
    row_cols = codes.cols.numpy()
    ks = live[top_point[live] >= 0]
    lengths = crow[top_point[ks] + 1] - crow[top_point[ks]]
    pair_k = np.repeat(ks, lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    pair_j = row_cols[np.repeat(crow[top_point[ks]], lengths) + offsets]
    keep = (pair_j != pair_k) & np.isin(pair_j, live)
    pair_j, pair_k = pair_j[keep], pair_k[keep]
    result = _first_where_silent(cols, pair_j, pair_k, codes.n_atoms, highest=True, empty=0.0, skip=1)
    return pair_j, pair_k, result


def _lower_end_failures(
    cols: _Columns, codes: SparseCodes, atoms: Tensor, mean: np.ndarray, live: np.ndarray
) -> np.ndarray:
    """Ordered pairs (j, k) failing the lower end min_{n ∈ Z_j} a_nk ≤ (1 − c_jk)ā_k: [F, 2].

    It binds only when k is active on all of Z_j, i.e. Z_j ⊆ S_k, equivalently Z_k ⊆ S_j, which needs
    |S_j| + |S_k| ≥ N, so one of the two (d below) is active on at least half the points. For each such d the
    atoms active on every point of Z_d are found from the codes of those points; both orders are then tested.
    An empty Z_j makes the hull empty: the pair fails.
    """
    N, K = codes.n_points, codes.n_atoms
    rows, atom_of, values = codes.rows.numpy(), codes.cols.numpy(), codes.values.double().numpy()
    counts = codes.counts.numpy()
    is_live = np.zeros(K, dtype=bool)
    is_live[live] = True
    failing: list[tuple[int, int]] = []
    for d in live[2 * counts[live] >= N]:
        silent = np.ones(N, dtype=bool)
        silent[cols.csc.indices[cols.indptr[d] : cols.indptr[d + 1]]] = False
        on_silent = silent[rows]
        cover_counts = np.bincount(atom_of[on_silent], minlength=K)
        covers = np.flatnonzero((cover_counts == silent.sum()) & is_live)
        covers = covers[covers != d]
        if not len(covers):
            continue
        cos = (atoms[torch.from_numpy(covers)] @ atoms[int(d)]).numpy()
        # (j = d, k = x): min of a_x over Z_d (every point of Z_d has x active).
        lowest = np.full(K, np.inf)
        np.minimum.at(lowest, atom_of[on_silent], values[on_silent])
        bad = lowest[covers] > (1 - cos) * mean[covers]
        failing += [(int(d), int(x)) for x in covers[bad]]
        # (j = x, k = d): min of a_d over Z_x ⊆ S_d, walking d's codes upwards.
        lowest_d = _first_where_silent(cols, covers, np.full(len(covers), d), K, highest=False, empty=np.inf)
        bad = lowest_d > (1 - cos) * mean[d]
        failing += [(int(x), int(d)) for x in covers[bad]]
    return np.array(sorted(set(failing)), dtype=np.int64).reshape(-1, 2)


def _no_live_atoms(form: str, started: float) -> PairwiseResult:
    """The result for codes that are all zero: no pair to test."""
    summary = PairwiseSummary(
        form=form,
        n_live_atoms=0,
        n_pairs=0,
        n_failing_pairs=0,
        n_nested_pairs=0,
        n_exception_pairs=0,
        exception_margins=Distribution.of(torch.zeros(0)),
        worst=[],
        seconds=round(time.perf_counter() - started, 3),
    )
    empty = torch.zeros((0, 2), dtype=torch.long)
    extra = {name: torch.zeros(0) for name in ("exception_j", "exception_k", "exception_margin")}
    return PairwiseResult(summary, empty, empty, torch.zeros(0, dtype=torch.float64), extra)


def pair_cosines(atoms: Tensor, j: Tensor, k: Tensor) -> Tensor:
    """c_jk = w_jᵀw_k for index vectors j, k [M]: [M] (a sampled W·Wᵀ product over the distinct pairs only)."""
    K = atoms.shape[0]
    if len(j) == 0:
        return torch.zeros(0, dtype=atoms.dtype)
    keys, inverse = torch.unique(j * K + k, return_inverse=True)  # sorted: CSR order
    offsets = torch.zeros(K + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(torch.bincount(keys // K, minlength=K), 0)
    pattern = csr_tensor(offsets, keys % K, torch.zeros(len(keys), dtype=atoms.dtype), (K, K))
    return torch.sparse.sampled_addmm(pattern, atoms, atoms.T, beta=0.0).values()[inverse]


def pairwise_hull_test(
    codes: SparseCodes,
    atoms: Tensor,
    *,
    bias: bool = True,
    n_worst: int = 20,
    antipodal_cosine: float = -0.95,
    close_cosine: float | None = None,
) -> PairwiseResult:
    """Run the 1-D hull (bias) or cone (no bias) test on every unordered pair of live atoms.

    ``codes``: A [N, K]; ``atoms``: W [K, D] with unit rows. Dead atoms (no activation) are skipped. The same
    blocked W·Wᵀ pass collects the antipodal pairs and, with ``close_cosine``, the candidates of
    :func:`dictlab.diagnostics.hierarchy.tilted_pairs`.
    """
    started = time.perf_counter()
    K = codes.n_atoms
    if codes.nnz == 0:
        return _no_live_atoms("hull" if bias else "cone", started)
    # The blocked W·Wᵀ pass runs in float32 at SAE scale (K > 4096) and float64 below, where it is cheap.
    W = atoms.float() if atoms.shape[0] > EXACT_GRAM_ATOMS else atoms.double()
    mean = codes.mean.double().numpy()
    counts = codes.counts.numpy()
    peak = np.zeros(K)
    cols = _Columns.of(codes)
    nonempty = cols.indptr[1:] > cols.indptr[:-1]
    peak[nonempty] = cols.sorted_values[cols.indptr[:-1][nonempty]]
    live = np.flatnonzero(mean > 0)
    is_live = np.zeros(K, dtype=bool)
    is_live[live] = True

    exc_j, exc_k, exc_max = _walk_exceptions(cols, codes, live)
    W64 = atoms.double()
    exc_cos = pair_cosines(W64, torch.from_numpy(exc_j), torch.from_numpy(exc_k)).numpy()

    def margin(max_silent: np.ndarray, cos: np.ndarray, k: np.ndarray) -> np.ndarray:
        need = (1 - cos) * mean[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(need > 0, max_silent / need - 1, np.inf)

    def fails(max_silent: np.ndarray, cos: np.ndarray, k: np.ndarray) -> np.ndarray:
        if bias:
            return margin(max_silent, cos, k) < 0
        return (max_silent <= 0) & (cos < 1 - 1e-12)

    exc_margin = margin(exc_max, exc_cos, exc_k)
    exc_fail = fails(exc_max, exc_cos, exc_k)
    exception_key = exc_j.astype(np.int64) * K + exc_k

    # Non-exception ordered pairs: M_{k|j} = peak_k, so (bias) j fails k iff c_jk < 1 − peak_k/ā_k.
    with np.errstate(divide="ignore", invalid="ignore"):
        threshold = np.where(is_live, 1 - peak / np.where(mean > 0, mean, 1), -np.inf)
    best_partner = np.full(K, -1, dtype=np.int64)
    best_cos = np.full(K, np.inf)
    fail_keys = [(np.minimum(exc_j, exc_k) * K + np.maximum(exc_j, exc_k))[exc_fail]]
    anti_j, anti_k, anti_c = [], [], []
    live_t = torch.from_numpy(live)
    W_live = W[live_t]
    exc_by_k = sp.csr_array((np.ones(len(exc_j)), (exc_k, exc_j)), shape=(K, K)) if len(exc_j) else None
    close: list[np.ndarray] = []
    for lo in range(0, len(live), GRAM_BLOCK):
        ks = live[lo : lo + GRAM_BLOCK]
        block = (W[torch.from_numpy(ks)] @ W_live.T).numpy()  # [k, j] over live j
        if close_cosine is not None:
            close.append(close_pairs_in_block(block, ks, live, close_cosine))
        r, c = np.nonzero(block < antipodal_cosine)
        jj, kk = live[c], ks[r]
        upper = jj > kk
        anti_j.append(kk[upper])
        anti_k.append(jj[upper])
        anti_c.append(block[r[upper], c[upper]].astype(np.float64))
        rows = np.arange(len(ks))
        block[rows, np.searchsorted(live, ks)] = np.inf  # from here on: the partners each k is tested against
        if exc_by_k is not None:
            sub = exc_by_k[ks]
            r, c = sub.nonzero()
            block[r, np.searchsorted(live, c)] = np.inf
        arg = block.argmin(axis=1)
        best_cos[ks] = block[rows, arg]
        best_partner[ks] = np.where(np.isfinite(best_cos[ks]), live[arg], -1)
        if bias:
            r, c = np.nonzero(block < threshold[ks][:, None])
            jj, kk = live[c], ks[r]
            fail_keys.append(np.minimum(jj, kk) * K + np.maximum(jj, kk))
    # Lower end of the 1-D hull: binds only when S_k ∪ S_j covers every point.
    lower = _lower_end_failures(cols, codes, W64, mean, live) if bias else np.zeros((0, 2), dtype=np.int64)
    fail_keys.append(np.minimum(lower[:, 0], lower[:, 1]) * K + np.maximum(lower[:, 0], lower[:, 1]))
    lower_keys = set(fail_keys[-1].tolist())
    failing = np.unique(np.concatenate(fail_keys)) if fail_keys else np.zeros(0, dtype=np.int64)
    nested_keys = np.unique((np.minimum(exc_j, exc_k) * K + np.maximum(exc_j, exc_k))[exc_max <= 0])

    # Worst ordered pairs: exceptions and each atom's most anti-aligned non-exception partner.
    non_exc_k = live[best_partner[live] >= 0]
    non_exc_margin = margin(peak[non_exc_k], best_cos[non_exc_k], non_exc_k)
    cand_j = np.concatenate([exc_j, best_partner[non_exc_k], lower[:, 0]])
    cand_k = np.concatenate([exc_k, non_exc_k, lower[:, 1]])
    cand_m = np.concatenate([exc_margin, non_exc_margin, np.full(len(lower), -1.0)])
    if not bias:
        cand_m = np.where(np.concatenate([exc_max, peak[non_exc_k], np.ones(len(lower))]) > 0, cand_m, -1.0)
    # Lowest margin first; among equal margins (e.g. every nested pair has −1) the better-supported atom first,
    # so a child active on hundreds of points outranks one active on a single point.
    lower_pairs = {(int(key // K), int(key % K)) for key in lower_keys}
    order = np.lexsort((-counts[cand_k], cand_m))
    worst, seen = [], set()
    exc_lookup = dict(zip(exception_key.tolist(), exc_max.tolist(), strict=True))
    for i in order:
        j, k = int(cand_j[i]), int(cand_k[i])
        key = (min(j, k), max(j, k))
        if key in seen:
            continue
        seen.add(key)
        worst.append(_verdict(j, k, W64, mean, peak, counts, exc_lookup, bias, key in lower_pairs))
        if len(worst) >= n_worst:
            break
    n_live = len(live)
    summary = PairwiseSummary(
        form="hull" if bias else "cone",
        n_live_atoms=n_live,
        n_pairs=n_live * (n_live - 1) // 2,
        n_failing_pairs=len(failing),
        n_nested_pairs=len(nested_keys),
        n_exception_pairs=len(exc_j),
        exception_margins=Distribution.of(torch.from_numpy(exc_margin[np.isfinite(exc_margin)])),
        worst=worst,
        seconds=round(time.perf_counter() - started, 3),
    )
    failing_t = torch.from_numpy(np.stack([failing // K, failing % K], axis=1))
    anti = np.stack([np.concatenate(anti_j), np.concatenate(anti_k)], axis=1) if anti_j else np.zeros((0, 2), int)
    return PairwiseResult(
        summary=summary,
        failing_pairs=failing_t,
        antipodal_pairs=torch.from_numpy(anti.astype(np.int64)),
        antipodal_cosines=torch.from_numpy(np.concatenate(anti_c) if anti_c else np.zeros(0)),
        extra={
            "exception_j": torch.from_numpy(exc_j),
            "exception_k": torch.from_numpy(exc_k),
            "exception_margin": torch.from_numpy(exc_margin),
        },
        close_pairs=torch.from_numpy(np.concatenate(close).astype(np.int64))
        if close
        else torch.zeros(0, 2, dtype=torch.long),
    )


def _verdict(
    j: int,
    k: int,
    W: Tensor,
    mean: np.ndarray,
    peak: np.ndarray,
    counts: np.ndarray,
    exc: dict[int, float],
    bias: bool,
    lower_end_fails: bool,
) -> PairVerdict:
    K = len(mean)
    cos = float(W[j] @ W[k])

    def max_silent(a: int, b: int) -> float:  # M_{a|b}
        return exc.get(b * K + a, float(peak[a]))

    m_kj, m_jk = max_silent(k, j), max_silent(j, k)

    def margin(m: float, a: int) -> float:
        need = (1 - cos) * mean[a]
        return m / need - 1 if need > 0 else float("inf")

    mg_kj, mg_jk = margin(m_kj, k), margin(m_jk, j)
    nested = m_kj <= 0 or m_jk <= 0
    passes = (mg_kj >= 0 and mg_jk >= 0 and not lower_end_fails) if bias else not (nested and cos < 1 - 1e-12)
    return PairVerdict(
        j=j,
        k=k,
        support_j=int(counts[j]),
        support_k=int(counts[k]),
        cosine=cos,
        max_k_where_j_silent=m_kj,
        max_j_where_k_silent=m_jk,
        margin_k_given_j=mg_kj,
        margin_j_given_k=mg_jk,
        nested=nested,
        lower_end_fails=lower_end_fails,
        passes=passes,
    )


class HullLP(BaseModel):
    """The multi-feature hull (bias) or cone (no bias) condition for atom j and its neighbours, as an LP."""

    j: int
    neighbours: list[int]
    n_silent_points: int = Field(description="Points of Z_j used (subsampled to at most max_points).")
    violation: float = Field(description="Minimal Σ|slack| over the normalised constraints (0 = feasible).")
    feasible: bool


def hull_lp(
    codes: SparseCodes,
    atoms: Tensor,
    j: int,
    neighbours: list[int],
    *,
    bias: bool = True,
    max_points: int = 10_000,
    tolerance: float = 1e-7,
    generator: torch.Generator | None = None,
) -> HullLP:
    """Is there p ≥ 0 on Z_j (Σp = 1 with a bias) with Σ_n p_n a_nk = (1 − c_jk)ā_k for every neighbour k?

    Constraints are divided by ā_k (by ‖α_k‖₁ for the cone) so slacks are comparable; the LP minimises their
    ℓ₁ norm with HiGHS and reports it.
    """
    mass_all = codes.mass
    neighbours = [k for k in neighbours if k != j and mass_all[k] > 0]  # a dead atom's constraint reads 0 = 0
    if not neighbours:
        raise ValueError(f"atom {j} has no live neighbour to test the hull condition against")
    csc = codes.scipy_csc()
    silent_mask = np.ones(codes.n_points, dtype=bool)
    silent_mask[csc.indices[csc.indptr[j] : csc.indptr[j + 1]]] = False
    silent = np.flatnonzero(silent_mask)
    if len(silent) > max_points:
        pick = torch.randperm(len(silent), generator=generator)[:max_points].numpy()
        silent = np.sort(silent[pick])
    mean = codes.mean.double().numpy()
    mass = codes.mass.double().numpy()
    scale = mean if bias else mass
    sub = csc[:, neighbours].tocsr()[silent].toarray()  # [m, |N|]
    cos = (atoms[neighbours].double() @ atoms[j].double()).numpy()
    target = 1 - cos
    m, q = sub.shape
    if m == 0:
        return HullLP(j=j, neighbours=neighbours, n_silent_points=0, violation=float("inf"), feasible=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        coeff = np.where(scale[neighbours] > 0, sub / scale[neighbours], 0.0).T  # [q, m]
    # Variables: p (m), s+ (q), s- (q) [, sum slack s0+, s0- with a bias].
    rows = [np.hstack([coeff, np.eye(q), -np.eye(q)])]
    rhs = [target]
    n_slack = 2 * q
    if bias:
        rows = [np.hstack([r, np.zeros((q, 2))]) for r in rows]
        rows.append(np.hstack([np.ones((1, m)), np.zeros((1, 2 * q)), np.ones((1, 1)), -np.ones((1, 1))]))
        rhs.append(np.ones(1))
        n_slack += 2
    A_eq = sp.csr_array(np.vstack(rows))
    c = np.concatenate([np.zeros(m), np.ones(n_slack)])
    result = linprog(c, A_eq=A_eq, b_eq=np.concatenate(rhs), bounds=(0, None), method="highs")
    violation = float(result.fun) if result.status == 0 else float("inf")
    return HullLP(j=j, neighbours=neighbours, n_silent_points=m, violation=violation, feasible=violation <= tolerance)
