"""Exact nonnegative-lasso codes (diagnostics.codes): optimal against a generic solver, with a certified gap."""

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from dictlab.diagnostics import make_dictionary, nonnegative_lasso
from dictlab.diagnostics.codes import _polish, dual_gap
from dictlab.diagnostics.problem import L1Dictionary


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


def _degenerate_problem(dtype: torch.dtype) -> tuple[torch.Tensor, L1Dictionary]:
    """More atoms than dimensions, a duplicated atom, an antipodal pair and a zero atom: singular support blocks."""
    g = torch.Generator().manual_seed(3)
    atoms = torch.randn(48, 6, generator=g, dtype=dtype)
    atoms /= atoms.norm(dim=1, keepdim=True)
    atoms[1], atoms[3], atoms[5] = atoms[0], 0.0, -atoms[4]
    X = 3 * torch.randn(1000, 6, generator=g, dtype=dtype)
    return X, L1Dictionary(atoms, None)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("lam", [1e-1, 1e-3, 1e-6])
def test_lasso_survives_singular_supports_at_any_lambda_and_thread_count(threads: int, lam: float) -> None:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        X, dictionary = _degenerate_problem(torch.float64)
        result = nonnegative_lasso(X, dictionary, lam, max_iter=500)
    finally:
        torch.set_num_threads(previous)
    assert torch.isfinite(result.codes).all() and (result.codes >= 0).all()
    primal, gap = dual_gap(X, result.codes, dictionary.atoms, lam)
    assert torch.isfinite(gap).all()
    if lam >= 1e-1:  # duplicated atoms make the optimum non-unique: FISTA still gets close
        assert float((gap / primal).max()) < 0.05 and result.polished_fraction > 0.5


def test_polish_never_accepts_a_support_larger_than_the_dimension() -> None:
    X, dictionary = _degenerate_problem(torch.float64)
    atoms = dictionary.atoms
    codes = torch.rand(len(X), len(atoms), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    polished, valid = _polish(X @ atoms.T, atoms, atoms @ atoms.T, codes, 1e-3, 1e-9)
    assert not valid.any() and torch.equal(polished, codes)
