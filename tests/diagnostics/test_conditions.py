"""First-order conditions C1–C3 / E1–E4 of (P_K) (diagnostics.conditions): a converged solver passes them,
random and perturbed dictionaries fail."""

import pytest
import torch

from diagnostics_fixtures import LAM, failing
from dictlab.diagnostics import (
    L1Dictionary,
    SparseCodes,
    check_conditions,
    learn_dictionary,
    make_dictionary,
    nonnegative_lasso,
    random_atoms,
)


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
