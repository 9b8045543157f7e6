"""Dense directions and antipodal pairs in the diagnostics report (diagnostics.dense)."""

import torch

from dictlab.diagnostics import SparseCodes, diagnose_codes, learn_dictionary


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
