"""The convex wide-dictionary limit (diagnostics.wide_limit): closed form, dual certificate, the bound below every
width."""

import itertools

import pytest
import torch

from dictlab.diagnostics import learn_dictionary, random_atoms, wide_limit


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


def test_wide_limit_with_bias_converges_fast_and_is_a_certified_bound():
    g = torch.Generator().manual_seed(4)
    X = 100 * torch.randn(2000, 16, generator=g, dtype=torch.float64) + 5  # ‖x − b‖/λ ≈ 8·10⁴
    limit = wide_limit(X, 0.05, bias=True)
    assert limit.iterations < 100
    assert limit.duality_gap <= 1e-9 * limit.value
    one_point = wide_limit(torch.ones(1, 4, dtype=torch.float64), 0.3, bias=True)
    assert one_point.value == pytest.approx(0.0) and one_point.ball_fraction == 1.0
