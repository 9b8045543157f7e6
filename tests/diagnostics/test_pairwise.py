"""The pairwise hull / cone test and the hull LP (diagnostics.pairwise), checked against brute force."""

import numpy as np
import pytest
import torch

from diagnostics_fixtures import LAM
from dictlab.diagnostics import (
    SparseCodes,
    hull_lp,
    make_dictionary,
    nonnegative_lasso,
    pairwise_hull_test,
    random_atoms,
)


def test_hand_built_parent_child_pair_is_flagged(hierarchy):
    X, gt = hierarchy
    for bias in (True, False):
        d = make_dictionary(gt, torch.zeros(8, dtype=torch.float64) if bias else None)
        codes = SparseCodes.from_dense(nonnegative_lasso(X, d, LAM).codes)
        result = pairwise_hull_test(codes, d.atoms, bias=bias)
        assert result.failing_pairs.tolist() == [[0, 1]]
        verdict = next(v for v in result.summary.worst if {v.j, v.k} == {0, 1})
        assert verdict.nested and not verdict.passes
        assert verdict.max_k_where_j_silent == 0.0  # the child never fires without its parent
        assert not hull_lp(codes, d.atoms, 0, [1], bias=bias).feasible
        assert hull_lp(codes, d.atoms, 2, [0, 1], bias=bias).feasible


def test_converged_dictionary_passes_the_pairwise_and_lp_tests(converged):
    _X, _, result = converged
    bias = result.dictionary.bias is not None
    codes = SparseCodes.from_dense(result.codes)
    pw = pairwise_hull_test(codes, result.dictionary.atoms, bias=bias)
    assert pw.summary.n_failing_pairs == 0
    for j in range(3):
        lp = hull_lp(codes, result.dictionary.atoms, j, [k for k in range(3) if k != j], bias=bias)
        assert lp.feasible, lp


def brute_force_margins(A: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """M[j, k] = max_{n: a_nj = 0} a_nk and the failing unordered pairs of the 1-D hull test (with bias)."""
    _N, K = A.shape
    mean = A.mean(axis=0)
    C = W @ W.T
    M = np.zeros((K, K))
    fails = set()
    for j in range(K):
        silent = A[:, j] == 0
        for k in range(K):
            if j == k:
                continue
            M[j, k] = A[silent, k].max() if silent.any() else 0.0
            need = (1 - C[j, k]) * mean[k]
            high_fail = M[j, k] < need
            low_fail = silent.any() and A[silent, k].min() > need
            if mean[k] > 0 and mean[j] > 0 and (high_fail or low_fail):
                fails.add((min(j, k), max(j, k)))
    return M, fails


def test_scalable_pairwise_pass_matches_brute_force():
    g = torch.Generator().manual_seed(5)
    N, K, D = 400, 40, 12
    W = random_atoms(K, D, g)
    W[1] = -W[0]  # an antipodal pair
    active = torch.rand(N, K, generator=g) < 0.08
    active[:, 0] = torch.rand(N, generator=g) < 0.7  # dense atom
    active[:, 1] = ~active[:, 0]
    active[:, 3] &= active[:, 2]  # nested child 3 inside parent 2
    active[:, 5] = active[:, 4] & (torch.rand(N, generator=g) < 0.5)  # another nested pair
    A = active.double() * (0.2 + torch.rand(N, K, generator=g, dtype=torch.float64))
    A[:, 9] = 0  # a dead atom
    codes = SparseCodes.from_dense(A)
    result = pairwise_hull_test(codes, W, bias=True, n_worst=500)
    M, fails = brute_force_margins(A.numpy(), W.numpy())
    assert {tuple(p) for p in result.failing_pairs.tolist()} == fails
    assert (2, 3) in fails and (4, 5) in fails
    for v in result.summary.worst:
        assert v.max_k_where_j_silent == pytest.approx(M[v.j, v.k])
        assert v.max_j_where_k_silent == pytest.approx(M[v.k, v.j])
    assert [0, 1] in result.antipodal_pairs.tolist()
    cone = pairwise_hull_test(codes, W, bias=False)
    nested = {
        (j, k)
        for j in range(K)
        for k in range(K)
        if j < k and A[:, j].sum() > 0 and A[:, k].sum() > 0 and (M[j, k] == 0 or M[k, j] == 0)
    }
    assert {tuple(p) for p in cone.failing_pairs.tolist()} == nested


@pytest.mark.parametrize(
    ("a0", "a1"),
    [([0.2, 0.2, 0.2, 3, 1, 0], [0, 0, 0, 0, 1, 1]), ([1, 1, 1, 0], [0, 0, 0, 1])],
    ids=["dense-parent", "complementary"],
)
def test_lower_end_of_the_hull_is_checked_in_both_directions(a0, a1):
    """Atom 1 is active wherever atom 0 is silent, always above (1 − c)·ā_1: no distribution on Z_0 can average
    it down to its mean, so the pair fails although both upper ends pass."""
    A = torch.tensor([a0, a1], dtype=torch.float64).T
    W = torch.eye(2, 3, dtype=torch.float64)
    result = pairwise_hull_test(SparseCodes.from_dense(A), W)
    _, fails = brute_force_margins(A.numpy(), W.numpy())
    assert fails == {(0, 1)}
    assert result.failing_pairs.tolist() == [[0, 1]]
    (verdict,) = result.summary.worst
    assert verdict.lower_end_fails and not verdict.passes
    assert not hull_lp(SparseCodes.from_dense(A), W, 0, [1]).feasible


def test_pairwise_pass_matches_brute_force_on_many_small_random_codes():
    rng = np.random.default_rng(0)
    for _ in range(150):
        N, K = int(rng.integers(3, 12)), int(rng.integers(2, 6))
        A = (rng.random((N, K)) < rng.uniform(0.1, 0.95, K)) * rng.uniform(0.1, 2, (N, K))
        W = torch.randn(K, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(int(rng.integers(1e6))))
        W /= W.norm(dim=1, keepdim=True)
        result = pairwise_hull_test(SparseCodes.from_dense(torch.tensor(A)), W, n_worst=100)
        _, fails = brute_force_margins(A, W.numpy())
        assert {tuple(p) for p in result.failing_pairs.tolist()} == fails
        for v in result.summary.worst:
            assert v.j != v.k and v.passes == ((min(v.j, v.k), max(v.j, v.k)) not in fails)


def test_degenerate_codes_do_not_crash():
    empty = pairwise_hull_test(SparseCodes.from_dense(torch.zeros(5, 3, dtype=torch.float64)), torch.eye(3))
    assert empty.summary.n_pairs == 0 and empty.summary.worst == []
    single = pairwise_hull_test(SparseCodes.from_dense(torch.rand(5, 1, dtype=torch.float64)), torch.eye(1, 3))
    assert single.summary.worst == []
    A = torch.tensor([[1.0, 0.0], [0.5, 0.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match="no live neighbour"):
        hull_lp(SparseCodes.from_dense(A), torch.eye(2, 3), 0, [1])
