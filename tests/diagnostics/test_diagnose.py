"""The diagnostics report of diagnose_codes (diagnostics.diagnose): JSON round trip, the hierarchy flagged."""

import torch

from diagnostics_fixtures import LAM
from dictlab.diagnostics import DiagnoseOptions, SparseCodes, diagnose_codes, make_dictionary, nonnegative_lasso


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
