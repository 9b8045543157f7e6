"""A trained SAE as a (P_K) dictionary (diagnostics.sae_mapping)."""

import pytest
import torch

from dictlab.diagnostics import DiagnoseOptions, diagnose_model
from dictlab.models import DictionaryConfig, SparseDictionary


def test_relu_sae_mapping_keeps_the_reconstruction():
    torch.manual_seed(0)
    model = SparseDictionary(DictionaryConfig(d_in=6, d_out=6, d_sae=10, activation="relu"))
    with torch.no_grad():
        model.W_dec.mul_(torch.linspace(0.5, 2.0, 10)[:, None])
        model.b_enc.fill_(0.1)
    X = torch.randn(200, 6)
    diag = diagnose_model(model, X, options=DiagnoseOptions(codes="encoder"), training_coefficient=0.4)
    assert diag.report.problem.lam == pytest.approx(0.2)
    assert diag.report.problem.codes == "encoder"
    with torch.no_grad():
        x_hat = model(X).double()
    recon = diag.codes.matmul(diag.dictionary.atoms) + diag.dictionary.bias
    torch.testing.assert_close(recon, x_hat, rtol=1e-5, atol=1e-5)
