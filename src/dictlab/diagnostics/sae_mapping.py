"""From a trained sparse dictionary to a point of (P_K).

Atoms are the normalised decoder rows, w_k = W_dec[k]/‖W_dec[k]‖; codes are scaled by the decoder norms,
a_nk = f_k(x_n)·‖W_dec[k]‖ (the reconstruction is unchanged); the bias is b_dec.

λ convention. dictlab's and SAELens' ReLU SAEs minimise mean_n [‖x_n − x̂_n‖² + λ_SAE·Σ_k f_k(x_n)‖W_dec[k]‖]
(squared error summed over dimensions); dividing by 2 gives (P_K)'s ½‖·‖² + λΣa, so λ = λ_SAE / 2. When the
training coefficient is unknown, the effective λ is the median of w_kᵀr_n over active entries, which equals λ
exactly at a stationary point (C1).
"""

from collections.abc import Iterator

import torch
from torch import Tensor

from dictlab.diagnostics.problem import DiagnosticsInputError, L1Dictionary
from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.models import SparseDictionary

L1_ACTIVATIONS = frozenset({"relu"})
"""Activations trained with an L1 penalty on nonnegative codes: the conditions are stated for these."""

NOT_L1_NOTE = (
    "The first-order conditions are stated for nonnegative codes with an L1 penalty (a ReLU SAE trained with L1). "
    "A {activation} dictionary has no L1 term, so its training did not optimise (P_K) and the conditions say "
    "nothing about how it was trained. What still applies at the λ you give: the decoder is a dictionary for "
    "(P_K), so with exact codes (--codes exact) C1–C3, E1–E4, the pairwise hull test, residual structure and the "
    "wide-limit bound all describe how far that dictionary is from a (P_K) optimum; with its own encoder codes "
    "they are descriptive statistics only."
)


def lambda_from_coefficient(sparsity_coefficient: float) -> float:
    """λ of (P_K) for a ReLU SAE trained with squared error summed over dims plus coefficient·Σ f‖W_dec‖."""
    return sparsity_coefficient / 2


def dictionary_from_model(model: SparseDictionary) -> L1Dictionary:
    """Unit atoms W_dec/‖W_dec‖ [K, D] and b_dec (None without a bias), in float64."""
    if model.cfg.kind == "crosscoder":
        raise DiagnosticsInputError(
            "a crosscoder's penalty is a sum of per-source decoder norms, not the single-norm L1 of (P_K); "
            "diagnose one source at a time by slicing its decoder block instead"
        )
    W = model.W_dec.detach().double().cpu()
    norms = W.norm(dim=1)
    if (norms == 0).any():
        raise DiagnosticsInputError(f"{int((norms == 0).sum())} decoder rows are zero and have no direction")
    bias = model.b_dec.detach().double().cpu() if model.cfg.use_bias else None
    return L1Dictionary(W / norms[:, None], bias)


def _chunks(model: SparseDictionary, X_in: Tensor, chunk: int) -> Iterator[Tensor]:
    norms = model.W_dec.detach().norm(dim=1)
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(X_in), chunk):
            batch = X_in[lo : lo + chunk].to(model.W_enc.dtype)
            yield (model.encode(batch) * norms).double().cpu()


def encoder_codes(model: SparseDictionary, X_in: Tensor, chunk: int = 4096) -> SparseCodes:
    """The model's amortised codes rescaled to unit atoms, a_nk = f_k(x_n)·‖W_dec[k]‖: A [N, K]."""
    return SparseCodes.from_chunks(_chunks(model, X_in, chunk), model.d_sae)


def effective_lambda(X: Tensor, dictionary: L1Dictionary, codes: SparseCodes) -> float:
    """median of w_kᵀr_n over active entries (n, k); equals λ at a stationary point."""
    if codes.nnz == 0:
        raise DiagnosticsInputError("no code is active, so λ cannot be estimated from the codes; pass --lam")
    R = dictionary.centered(X.double()) - codes.matmul(dictionary.atoms)
    value = float(codes.entry_dots(R, dictionary.atoms).median())
    if value <= 0:
        raise DiagnosticsInputError(
            f"the estimated λ (median w_kᵀr_n over active codes) is {value:.3g} ≤ 0: these codes are far from "
            "an L1 optimum; pass --lam"
        )
    return value
