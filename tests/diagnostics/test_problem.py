"""Bad input to the diagnostics (diagnostics.problem's checks, and the models they refuse) gets clear errors."""

import pytest
import torch

from diagnostics_fixtures import LAM
from dictlab.diagnostics import (
    DiagnoseOptions,
    DiagnosticsInputError,
    SparseCodes,
    diagnose_codes,
    diagnose_model,
    learn_dictionary,
    make_dictionary,
    nonnegative_lasso,
)
from dictlab.models import DictionaryConfig, SparseDictionary


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
