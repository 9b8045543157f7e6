"""The joint (P_K) solver (diagnostics.solver): descent, and the tilt / partial absorption of a planted child atom."""

import numpy as np
import pytest
import torch

from diagnostics_fixtures import LAM
from dictlab.diagnostics import learn_dictionary, objective, random_atoms


def test_child_atom_tilts_towards_its_parent_partial_absorption(hierarchy):
    X, gt = hierarchy
    result = learn_dictionary(X, LAM, gt, bias=False, tol=1e-10)
    cos = result.dictionary.atoms @ gt.T
    assert 0.45 < float(cos[1, 0]) < 0.6  # reference Exp 1: 0.52
    assert 0.8 < float(cos[1, 1]) < 0.9  # reference: 0.85
    child_points = result.codes[:, 1] > 0
    still_on = float((result.codes[child_points, 0] > 0).double().mean())
    assert 0.6 < still_on < 0.95  # partial absorption (reference: 82 %)


def test_block_descent_never_increases_the_loss(hierarchy):
    X, _ = hierarchy
    result = learn_dictionary(X, LAM, random_atoms(5, 8, torch.Generator().manual_seed(0)), tol=1e-6, max_iter=300)
    losses = np.array(result.losses)
    assert (np.diff(losses) <= 1e-9 * losses[:-1]).all()
    assert result.loss == pytest.approx(objective(X, result.dictionary, result.codes, LAM), rel=1e-12)
