"""The scalable paths of the report agree with their dense definitions: sparse code products, sampled cosines,
C1 off the support (certificate, fp32 screen, sample), E2's worst pair, the shrinkage quadratic forms, the
batched split pressure and the tilted-pair candidates shared with the hull test."""

import pytest
import torch

from dictlab.diagnostics import SparseCodes, check_conditions, make_dictionary, pairwise_hull_test, split_pressure
from dictlab.diagnostics.hierarchy import TILT_COSINE, tilted_pairs
from dictlab.diagnostics.pairwise import pair_cosines
from dictlab.diagnostics.residuals import residual_summary, support_projections

N, K, D, LAM = 400, 40, 16, 0.3


def _problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, SparseCodes]:
    """Random unit atoms [K, D], data [N, D] and non-optimal sparse codes (so conditions fail somewhere)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(K, D, generator=g, dtype=torch.float64)
    W[1] = W[0] + W[2]  # a linearly dependent triple for the shrinkage solves
    W = W / W.norm(dim=1, keepdim=True)
    A = torch.rand(N, K, generator=g, dtype=torch.float64) * (torch.rand(N, K, generator=g) < 0.1)
    A[:, :3] = 0.0
    A[:40, :3] = 1.0  # supports holding all three of the dependent atoms
    A[40:60] = 0.0  # points without codes
    X = A @ W + 0.2 * torch.randn(N, D, generator=g, dtype=torch.float64)
    X[60:120] = (A @ W)[60:120] + 1e-3 * torch.randn(60, D, generator=g, dtype=torch.float64)  # ‖r‖ ≤ λ here
    return W, X, SparseCodes.from_dense(A)


def _dense_c1(R: torch.Tensor, W: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    G = R @ W.T / LAM
    G[A > 0] = 1.0
    return (G - 1).clamp_min(0).amax(dim=1)


def test_sparse_code_products_match_dense():
    W, X, codes = _problem()
    A = codes.to_dense()
    R = X - A @ W
    torch.testing.assert_close(codes.matmul(W), A @ W)
    torch.testing.assert_close(codes.t_matmul(R), A.T @ R)
    torch.testing.assert_close(codes.entry_dots(R, W), (R @ W.T)[codes.rows, codes.cols])
    j = torch.tensor([5, 3, 5, 39, 0])
    k = torch.tensor([7, 3, 7, 1, 39])  # unsorted, repeated and diagonal pairs
    torch.testing.assert_close(pair_cosines(W, j, k), (W[j] * W[k]).sum(dim=1))


def test_codes_out_of_csr_order_are_refused():
    with pytest.raises(ValueError, match="CSR order"):
        SparseCodes(torch.tensor([0, 0]), torch.tensor([2, 1]), torch.tensor([1.0, 1.0]), 1, 3)
    with pytest.raises(ValueError, match="columns"):
        SparseCodes(torch.tensor([0]), torch.tensor([3]), torch.tensor([1.0]), 1, 3)


@pytest.mark.parametrize("max_points", [10_000, 50])
def test_c1_off_support_is_exact_where_checked_and_states_its_sample(max_points):
    W, X, codes = _problem()
    d = make_dictionary(W, None)
    checks, arrays = check_conditions(X, d, codes, LAM, max_dense_points=max_points)
    c1 = next(c for c in checks if c.name == "C1 inactive")
    reference = _dense_c1(X - codes.to_dense() @ W, W, codes.to_dense())
    torch.testing.assert_close(arrays.c1_inactive, reference[arrays.c1_points])
    certified = (X - codes.to_dense() @ W).norm(dim=1) <= LAM
    assert certified.sum() >= 60 and (reference[certified] == 0).all()
    assert not c1.holds
    if max_points >= N:
        assert c1.exact and c1.error_bound is None and len(arrays.c1_points) == N
    else:
        assert not c1.exact and "95% confidence" in (c1.error_bound or "")
        assert len(arrays.c1_points) == max_points and not certified[arrays.c1_points].any()


def test_e2_reports_each_atoms_worst_pair():
    W, X, codes = _problem()
    checks, _ = check_conditions(X, make_dictionary(W, None), codes, LAM)
    e2 = next(c for c in checks if c.name == "E2")
    A = codes.to_dense()
    R = X - A @ W
    mass = A.sum(dim=0)
    live = torch.nonzero(mass > 0).flatten()
    e1 = (A.T @ R)[live] / LAM - mass[live, None] * W[live]
    values = (e1 @ W.T).abs() / mass[live, None]
    values[torch.arange(len(live)), live] = 0.0
    worst_k = int(values.max(dim=1).values.argmax())
    assert e2.distribution.max == pytest.approx(float(values.max()), rel=1e-9)
    assert e2.worst[0].where == [int(values[worst_k].argmax()), int(live[worst_k])]


def test_shrinkage_quadratic_forms_match_explicit_projections():
    W, X, codes = _problem()
    A = codes.to_dense()
    R = X - A @ W
    g = codes.entry_dots(R, W) / LAM
    points = torch.nonzero(A.sum(dim=1) > 0).flatten()
    share, deviation = support_projections(codes, W, g, R.norm(dim=1), LAM, points)
    for i, n in enumerate(points.tolist()):
        WS = W[A[n] > 0]  # [s, D]
        P = WS.T @ torch.linalg.pinv(WS @ WS.T) @ WS  # projection onto span(W_S)
        inside = P @ R[n]
        predicted = LAM * WS.T @ torch.linalg.pinv(WS @ WS.T) @ torch.ones(len(WS), dtype=W.dtype)
        assert share[i] == pytest.approx(float(inside.pow(2).sum() / R[n].pow(2).sum()), rel=1e-6, abs=1e-9)
        assert deviation[i] == pytest.approx(float((inside - predicted).norm() / LAM), rel=1e-6, abs=1e-7)


def test_sampled_shrinkage_says_so():
    W, X, codes = _problem()
    A = codes.to_dense()
    R = X - A @ W
    g = codes.entry_dots(R, W) / LAM
    full, _ = residual_summary(R, codes, W, LAM, g, generator=torch.Generator().manual_seed(0))
    sampled, _ = residual_summary(R, codes, W, LAM, g, max_points=100, generator=torch.Generator().manual_seed(0))
    assert full.shrinkage_exact and full.shrinkage_error_bound is None
    assert full.shrinkage_share.count == int((A.sum(dim=1) > 0).sum())
    assert not sampled.shrinkage_exact and sampled.shrinkage_share.count == 100
    assert "DKW" in (sampled.shrinkage_error_bound or "")
    assert full.split_pressure == sampled.split_pressure  # per-atom statistics are never sampled
    alignment = (R * (A @ W)).sum(dim=1)[A.sum(dim=1) > 0] / (LAM * A.sum(dim=1)[A.sum(dim=1) > 0])
    assert full.reconstruction_alignment.mean == pytest.approx(float(alignment.mean()), rel=1e-9)


def _split_pressure_reference(R, codes, atoms, start, power_iterations=4, sign_iterations=6):
    """Atom by atom, on the explicitly projected block (the statistic's definition)."""
    A = codes.to_dense()
    out = torch.zeros(len(atoms), dtype=R.dtype)
    for k in range(len(atoms)):
        rows = A[:, k] > 0
        if not rows.any():
            continue
        a, w = A[rows, k], atoms[k]
        block = R[rows] - (R[rows] @ w)[:, None] * w
        v = start[k] - (start[k] @ w) * w
        v = v / v.norm()
        for _ in range(power_iterations):
            v = block.T @ (a * (block @ v))
            v = v / v.norm()
        best = float(a @ (block @ v).abs())
        for _ in range(sign_iterations):
            candidate = block.T @ (a * torch.sign(block @ v))
            if candidate.norm() == 0:
                break
            candidate = candidate / candidate.norm()
            value = float(a @ (block @ candidate).abs())
            if value <= best:
                break
            v, best = candidate, value
        out[k] = best
    return out


def test_batched_split_pressure_matches_the_atom_by_atom_definition():
    W, X, codes = _problem()
    R = X - codes.matmul(W)
    batched = split_pressure(R, codes, W, generator=torch.Generator().manual_seed(5))
    start = torch.randn(K, D, generator=torch.Generator().manual_seed(5), dtype=R.dtype)
    reference = _split_pressure_reference(R, codes, W, start)
    torch.testing.assert_close(batched, reference, rtol=1e-4, atol=1e-6)
    assert (batched[codes.counts == 0] == 0).all() and (batched[codes.counts > 0] > 0).all()


def test_tilted_pairs_from_the_hull_pass_equal_their_own_pass():
    g = torch.Generator().manual_seed(2)
    W = torch.randn(K, D, generator=g, dtype=torch.float64)
    W[10] = W[11] + 0.3 * W[10]  # a close pair
    W = W / W.norm(dim=1, keepdim=True)
    A = torch.rand(N, K, generator=g, dtype=torch.float64) * (torch.rand(N, K, generator=g) < 0.2)
    with_parent = (A[:, 11] > 0) & (torch.rand(N, generator=g) < 0.7)
    alone = (A[:, 11] == 0) & (torch.rand(N, generator=g) < 0.05)  # the absorbed share of the child
    A[:, 10] = torch.where(with_parent | alone, 0.5 + torch.rand(N, generator=g, dtype=torch.float64), 0.0)
    codes = SparseCodes.from_dense(A)
    pairwise = pairwise_hull_test(codes, W, close_cosine=TILT_COSINE)
    shared = tilted_pairs(codes, W, candidates=pairwise.close_pairs)
    own = tilted_pairs(codes, W)
    assert shared == own and any({p.parent, p.child} == {10, 11} for p in own)
    cos = W @ W.T
    close = {(j, k) for j in range(K) for k in range(j + 1, K) if cos[j, k] >= TILT_COSINE}
    assert close <= {tuple(p) for p in pairwise.close_pairs.tolist()}
