"""Residual structure (diagnostics.residuals): split pressure."""

import torch

from dictlab.diagnostics import SparseCodes, make_dictionary, nonnegative_lasso, split_pressure


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
