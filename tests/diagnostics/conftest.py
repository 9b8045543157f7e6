"""Fixtures of the diagnostics tests: the planted hierarchy and the solver converged on it (with and without a
bias), built once per session."""

import pytest
import torch

from diagnostics_fixtures import LAM, hierarchy_data
from dictlab.diagnostics import learn_dictionary


@pytest.fixture(scope="session")
def hierarchy() -> tuple[torch.Tensor, torch.Tensor]:
    return hierarchy_data()


@pytest.fixture(scope="session", params=[True, False], ids=["bias", "no-bias"])
def converged(request, hierarchy):
    X, gt = hierarchy
    result = learn_dictionary(X, LAM, gt, bias=request.param, tol=1e-10)
    return X, gt, result
