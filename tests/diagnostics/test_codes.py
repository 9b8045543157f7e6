"""Exact nonnegative-lasso codes (diagnostics.codes): optimal against a generic solver, with a certified gap."""

import numpy as np
import torch
from scipy.optimize import minimize

from dictlab.diagnostics import make_dictionary, nonnegative_lasso


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
