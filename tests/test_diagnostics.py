"""Optimality diagnostics for (P_K): solvers, conditions, the pairwise hull test, the convex bound."""

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from dictlab.diagnostics import (
    DiagnoseOptions,
    DiagnosticsInputError,
    L1Dictionary,
    SparseCodes,
    check_conditions,
    diagnose_codes,
    diagnose_model,
    hull_lp,
    learn_dictionary,
    make_dictionary,
    nonnegative_lasso,
    objective,
    pairwise_hull_test,
    random_atoms,
    split_pressure,
    wide_limit,
)
from dictlab.models import DictionaryConfig, SparseDictionary

LAM = 0.05


def hierarchy_data(seed: int = 0, n: int = 3000) -> tuple[torch.Tensor, torch.Tensor]:
    """Exp 1 of the reference: orthogonal parent/child/other in D = 8; child fires only with its parent."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    gt = Q[:3]

    def mag() -> torch.Tensor:
        return 0.5 + torch.rand(n, generator=g, dtype=torch.float64)

    u = torch.rand(n, generator=g, dtype=torch.float64)
    parent_on, child_on = u < 0.45, u < 0.15
    other_on = torch.rand(n, generator=g, dtype=torch.float64) < 0.3
    codes = torch.stack([parent_on * mag(), child_on * mag(), other_on * mag()], dim=1)
    X = codes @ gt + 0.01 * torch.randn(n, 8, generator=g, dtype=torch.float64)
    return X, gt


@pytest.fixture(scope="module")
def hierarchy() -> tuple[torch.Tensor, torch.Tensor]:
    return hierarchy_data()


@pytest.fixture(scope="module", params=[True, False], ids=["bias", "no-bias"])
def converged(request, hierarchy):
    X, gt = hierarchy
    result = learn_dictionary(X, LAM, gt, bias=request.param, tol=1e-10)
    return X, gt, result


def failing(checks) -> list[str]:
    return [c.name for c in checks if not c.holds]


def test_nonnegative_lasso_matches_a_generic_solver_and_certifies_its_gap():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(40, 6, generator=g, dtype=torch.float64)
    d = make_dictionary(torch.randn(10, 6, generator=g, dtype=torch.float64), torch.zeros(6, dtype=torch.float64))
    result = nonnegative_lasso(X, d, 0.3)
    assert result.converged and result.max_relative_gap < 1e-10
    assert (result.codes >= 0).all()
    W = d.atoms.numpy()
    for n in range(0, 40, 7):
        x = X[n].numpy()

        def f(a, x=x):
            r = x - a @ W
            return 0.5 * r @ r + 0.3 * a.sum(), -(W @ r) + 0.3

        ref = minimize(f, np.zeros(10), jac=True, bounds=[(0, None)] * 10, method="L-BFGS-B", tol=1e-14)
        assert f(result.codes[n].numpy())[0] <= ref.fun + 1e-9


def test_converged_solver_satisfies_every_condition(converged):
    X, _, result = converged
    assert result.converged
    checks, _ = check_conditions(X, result.dictionary, SparseCodes.from_dense(result.codes), LAM, tolerance=1e-5)
    names = {c.name for c in checks}
    expected = {"C1 active", "C1 inactive", "C2", "E1", "E2"}
    expected |= {"C3", "E4", "E4 Σp = 1", "bias identity"} if result.dictionary.bias is not None else {"E3"}
    assert expected <= names
    assert failing(checks) == []
    # relative violations are near round-off, far inside 1e-5
    assert max(c.distribution.max for c in checks if c.distribution.max is not None) < 1e-8


def test_child_atom_tilts_towards_its_parent_partial_absorption(hierarchy):
    X, gt = hierarchy
    result = learn_dictionary(X, LAM, gt, bias=False, tol=1e-10)
    cos = result.dictionary.atoms @ gt.T
    assert 0.45 < float(cos[1, 0]) < 0.6  # reference Exp 1: 0.52
    assert 0.8 < float(cos[1, 1]) < 0.9  # reference: 0.85
    child_points = result.codes[:, 1] > 0
    still_on = float((result.codes[child_points, 0] > 0).double().mean())
    assert 0.6 < still_on < 0.95  # partial absorption (reference: 82 %)


@pytest.mark.parametrize("bias", [True, False])
def test_random_and_perturbed_dictionaries_fail(hierarchy, bias):
    X, gt = hierarchy
    g = torch.Generator().manual_seed(3)
    random = L1Dictionary(random_atoms(3, 8, g), X.mean(dim=0) if bias else None)
    codes = nonnegative_lasso(X, random, LAM).codes
    checks, _ = check_conditions(X, random, SparseCodes.from_dense(codes), LAM)
    assert {"C2", "E1"} <= set(failing(checks))
    assert "C1 active" not in failing(checks)  # exact codes still satisfy C1
    result = learn_dictionary(X, LAM, gt, bias=bias, tol=1e-10)
    noisy = result.dictionary.atoms + 1e-3 * torch.randn(3, 8, generator=g, dtype=torch.float64)
    perturbed = make_dictionary(noisy, result.dictionary.bias)
    codes = nonnegative_lasso(X, perturbed, LAM).codes
    checks, _ = check_conditions(X, perturbed, SparseCodes.from_dense(codes), LAM)
    assert "C2" in failing(checks)


def test_block_descent_never_increases_the_loss(hierarchy):
    X, _ = hierarchy
    result = learn_dictionary(X, LAM, random_atoms(5, 8, torch.Generator().manual_seed(0)), tol=1e-6, max_iter=300)
    losses = np.array(result.losses)
    assert (np.diff(losses) <= 1e-9 * losses[:-1]).all()
    assert result.loss == pytest.approx(objective(X, result.dictionary, result.codes, LAM), rel=1e-12)


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


def test_wide_limit_closed_form_and_dual_certificate():
    g = torch.Generator().manual_seed(2)
    X = torch.randn(60, 4, generator=g, dtype=torch.float64)
    lam = 0.8
    limit = wide_limit(X, lam, bias=False)
    norms = X.norm(dim=1)
    expected = torch.where(norms > lam, lam * norms - lam**2 / 2, norms**2 / 2).sum()
    assert limit.value == pytest.approx(float(expected), rel=1e-12)
    assert limit.ball_fraction == pytest.approx(float((norms <= lam).double().mean()))
    with_bias = wide_limit(X + 3.0, lam, bias=True)
    assert with_bias.duality_gap < 1e-6 * with_bias.value
    assert with_bias.value <= wide_limit(X + 3.0, lam, bias=False).value


def test_convex_bound_is_below_every_width_and_the_gap_shrinks():
    """Exp 4 at small size: 4 orthogonal nonnegative sparse features in D = 5, N = 40, λ = 0.3, no bias."""
    g = torch.Generator().manual_seed(0)
    Q, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    on = torch.rand(40, 4, generator=g) < 0.4
    X = (on * torch.rand(40, 4, generator=g, dtype=torch.float64) * 2) @ Q[:4]
    lam = 0.3
    bound = wide_limit(X, lam, bias=False).value
    gaps = []
    for K in (4, 8, 16):
        best = min(
            learn_dictionary(
                X, lam, random_atoms(K, 5, torch.Generator().manual_seed(s)), bias=False, tol=1e-7, max_iter=3000
            ).loss
            for s in range(2)
        )
        assert best >= bound - 1e-9
        gaps.append(best - bound)
    assert all(b < a for a, b in itertools.pairwise(gaps)), gaps
    assert gaps[-1] < 0.3 * gaps[0]


def test_split_pressure_is_zero_for_one_sparse_residuals_and_positive_for_a_merged_atom():
    # Two rays; one atom per ray leaves every active residual at λw_k → SP = 0.
    rays = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    X = torch.cat([rays[0] * torch.linspace(1, 2, 20)[:, None], rays[1] * torch.linspace(1, 2, 20)[:, None]]).double()
    lam = 0.1
    d = make_dictionary(rays, None)
    codes = SparseCodes.from_dense(nonnegative_lasso(X, d, lam).codes)
    R = d.residuals(X, codes.to_dense())
    assert split_pressure(R, codes, d.atoms).abs().max() < 1e-10
    merged = make_dictionary(torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64), None)
    codes = SparseCodes.from_dense(nonnegative_lasso(X, merged, lam).codes)
    R = merged.residuals(X, codes.to_dense())
    assert split_pressure(R, codes, merged.atoms)[0] > 1.0


def test_diagnose_report_is_json_and_flags_the_hierarchy(hierarchy):
    X, gt = hierarchy
    d = make_dictionary(gt, torch.zeros(8, dtype=torch.float64))  # the generative dictionary, bias 0
    codes = SparseCodes.from_dense(nonnegative_lasso(X, d, LAM).codes)
    diag = diagnose_codes(X, d, codes, LAM, DiagnoseOptions(pairs=((0, 1),)))
    report = diag.report
    assert not report.conditions_hold
    assert report.pairwise.n_nested_pairs == 1
    assert report.hierarchy.n_nested == 1
    pair = report.hierarchy.pairs[0]
    assert (pair.parent, pair.child) == (0, 1) and pair.p_parent_given_child == 1.0
    assert report.wide_limit.gap is not None and report.wide_limit.gap > 0
    assert any(not lp.feasible for lp in report.lp)
    restored = type(report).model_validate_json(report.model_dump_json())
    assert restored == report


def test_relu_sae_mapping_keeps_the_reconstruction():
    torch.manual_seed(0)
    model = SparseDictionary(DictionaryConfig(d_in=6, d_out=6, d_sae=10, activation="relu"))
    with torch.no_grad():
        model.W_dec.mul_(torch.linspace(0.5, 2.0, 10)[:, None])
        model.b_enc.fill_(0.1)
    X = torch.randn(200, 6)
    diag = diagnose_model(model, X, options=DiagnoseOptions(codes="encoder"), training_coefficient=0.4)
    assert diag.report.problem.lam == pytest.approx(0.2)
    assert diag.report.problem.codes == "encoder"
    with torch.no_grad():
        x_hat = model(X).double()
    recon = diag.codes.matmul(diag.dictionary.atoms) + diag.dictionary.bias
    torch.testing.assert_close(recon, x_hat, rtol=1e-5, atol=1e-5)


def test_bad_input_gets_clear_errors(hierarchy):
    X, gt = hierarchy
    d = make_dictionary(gt, None)
    with pytest.raises(DiagnosticsInputError, match="NaN or Inf"):
        bad = X.clone()
        bad[3, 2] = float("nan")
        learn_dictionary(bad, LAM, gt)
    with pytest.raises(DiagnosticsInputError, match="empty"):
        learn_dictionary(X[:0], LAM, gt)
    with pytest.raises(DiagnosticsInputError, match="width 7"):
        diagnose_codes(X[:, :7], d, SparseCodes.from_dense(torch.zeros(len(X), 3)), LAM)
    with pytest.raises(DiagnosticsInputError, match="λ must be"):
        learn_dictionary(X, -1.0, gt)
    topk = SparseDictionary(DictionaryConfig(d_in=8, d_out=8, d_sae=6, activation="topk", k=2))
    with pytest.raises(DiagnosticsInputError, match="L1") as info:
        diagnose_model(topk, X.float())
    assert "still applies" in str(info.value) and "--lam" in str(info.value)
    report = diagnose_model(topk, X.float(), options=DiagnoseOptions(lam=LAM)).report
    assert any("no L1 term" in note for note in report.notes)
    crosscoder = SparseDictionary(
        DictionaryConfig(kind="crosscoder", d_in=8, d_out=8, d_sae=6, n_sources=2, activation="relu")
    )
    with pytest.raises(DiagnosticsInputError, match="crosscoder"):
        diagnose_model(crosscoder, X.float())
    with pytest.raises(DiagnosticsInputError, match="outside"):
        diagnose_codes(
            X, d, SparseCodes.from_dense(nonnegative_lasso(X, d, LAM).codes), LAM, DiagnoseOptions(pairs=((0, 9),))
        )


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


def test_wide_limit_with_bias_converges_fast_and_is_a_certified_bound():
    g = torch.Generator().manual_seed(4)
    X = 100 * torch.randn(2000, 16, generator=g, dtype=torch.float64) + 5  # ‖x − b‖/λ ≈ 8·10⁴
    limit = wide_limit(X, 0.05, bias=True)
    assert limit.iterations < 100
    assert limit.duality_gap <= 1e-9 * limit.value
    one_point = wide_limit(torch.ones(1, 4, dtype=torch.float64), 0.3, bias=True)
    assert one_point.value == pytest.approx(0.0) and one_point.ball_fraction == 1.0


def test_antipodal_pair_is_reported_with_its_split_and_prediction():
    """A dense signed direction plus a sparse feature: the converged antipodal pair splits at the median, and the
    sparse atom (active with either half) obeys c(u, w_k) = P_k(S₊) − P_k(S₋)."""
    g = torch.Generator().manual_seed(7)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    u, v = Q[0], Q[1]
    n = 2000
    s = torch.randn(n, generator=g, dtype=torch.float64) + 0.5
    sparse = (torch.rand(n, generator=g, dtype=torch.float64) < 0.2) * (0.5 + torch.rand(n, generator=g))
    X = s[:, None] * u + sparse[:, None] * v + 0.01 * torch.randn(n, 6, generator=g, dtype=torch.float64)
    lam = 0.1
    result = learn_dictionary(X, lam, torch.stack([u, -u, v]), bias=True, tol=1e-9)
    assert result.converged
    report = diagnose_codes(X, result.dictionary, SparseCodes.from_dense(result.codes), lam).report
    assert report.dense.n_antipodal_pairs == 1
    (pair,) = report.dense.antipodal_pairs
    assert pair.cosine < -0.999
    assert abs(pair.bias_along_u - pair.median_projection) < 0.05
    assert 0.35 < pair.density_plus < 0.55 and 0.35 < pair.density_minus < 0.55
    assert pair.n_predicted_atoms == 1
    assert pair.prediction_max_excess < 1e-6  # |c − (P₊ − P₋)| ≤ P(neither) at the optimum
    assert pair.prediction_max_error > 1e-3  # ... and the bound is needed: some of the atom's mass is in neither
    assert report.dense.n_dense == 0  # no single atom carries the dense direction
