"""Joint dictionary learning for (P_K) to a stationary point: block coordinate descent.

One sweep = exact codes for the current dictionary (warm-started nonnegative lasso), then every atom in turn set
to its closed-form optimum with the others and all codes fixed, w_k ← normalise(R_kᵀα_k) with R_k the residual
without atom k, then the bias to the mean residual. Every block step is exact, so the loss never increases; the
sweep stops when the atom (C2) and bias (C3) conditions hold to ``tol`` relative (C1 holds through the codes).
"""

from dataclasses import dataclass, field

import torch
from torch import Tensor

from dictlab.diagnostics.codes import nonnegative_lasso
from dictlab.diagnostics.problem import L1Dictionary, check_data, check_lambda, make_dictionary, objective
from dictlab.progress import progress_bar


@dataclass
class SolverResult:
    """A (P_K) solution and how it was reached."""

    dictionary: L1Dictionary
    codes: Tensor
    """A: [N, K]."""
    loss: float
    iterations: int
    stationarity: float
    """max(C2, C3) relative violation at the end."""
    converged: bool
    losses: list[float] = field(default_factory=list)


def stationarity(X: Tensor, dictionary: L1Dictionary, codes: Tensor, lam: float) -> float:
    """max over atoms of ‖(I − w_kw_kᵀ)Rᵀα_k‖/(λ‖α_k‖₁), and ‖ΣR‖/(Nλ) with a bias."""
    R = dictionary.residuals(X, codes)
    pull = R.T @ codes  # [D, K]: Rᵀα_k
    W = dictionary.atoms
    tangential = pull.T - (pull.T * W).sum(dim=1, keepdim=True) * W
    mass = codes.sum(dim=0)
    live = mass > 0
    worst = float((tangential[live].norm(dim=1) / (lam * mass[live])).max()) if live.any() else 0.0
    if dictionary.bias is not None:
        worst = max(worst, float(R.sum(dim=0).norm() / (len(X) * lam)))
    return worst


def random_atoms(n_atoms: int, dim: int, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> Tensor:
    """Uniform random unit atoms [K, D]."""
    W = torch.randn(n_atoms, dim, generator=generator, dtype=dtype)
    return W / W.norm(dim=1, keepdim=True)


def learn_dictionary(
    X: Tensor,
    lam: float,
    init: L1Dictionary | Tensor,
    *,
    bias: bool = True,
    tol: float = 1e-9,
    max_iter: int = 5000,
    progress: bool = False,
) -> SolverResult:
    """Minimise (P_K) from ``init`` (a dictionary, or initial atoms [K, D]) by block coordinate descent.

    With ``bias`` the bias starts at the data mean unless ``init`` carries one. Computation runs in X's dtype;
    use float64 to reach tolerances below 1e-7.
    """
    lam = check_lambda(lam)
    X = check_data(X)
    if isinstance(init, Tensor):
        init = make_dictionary(init, X.mean(dim=0) if bias else None)
    elif bias and init.bias is None:
        init = L1Dictionary(init.atoms, X.mean(dim=0))
    elif not bias:
        init = L1Dictionary(init.atoms, None)
    check_data(init.atoms, X.shape[1], "initial atoms")
    W = init.atoms.to(X.dtype).clone()
    b = None if init.bias is None else init.bias.to(X.dtype).clone()
    codes = None
    losses: list[float] = []
    worst = float("inf")
    bar = progress_bar(range(max_iter), desc="(P_K) block descent", unit=" sweeps", enabled=progress)
    iteration = 0
    for iteration in bar:  # noqa: B007 — reported below
        dictionary = L1Dictionary(W, b)
        codes = nonnegative_lasso(X, dictionary, lam, init=codes).codes
        losses.append(objective(X, dictionary, codes, lam))
        worst = stationarity(X, dictionary, codes, lam)
        bar.set_postfix(loss=f"{losses[-1]:.6g}", stationarity=f"{worst:.2e}")
        if worst <= tol:
            break
        R = dictionary.residuals(X, codes)
        mass = codes.sum(dim=0)
        for k in torch.nonzero(mass > 0).flatten().tolist():
            alpha = codes[:, k]
            R += alpha[:, None] * W[k]
            pull = R.T @ alpha
            W[k] = pull / pull.norm()
            R -= alpha[:, None] * W[k]
        if b is not None:
            b += R.mean(dim=0)
    dictionary = L1Dictionary(W, b)
    assert codes is not None
    return SolverResult(
        dictionary=dictionary,
        codes=codes,
        loss=losses[-1],
        iterations=iteration + 1,
        stationarity=worst,
        converged=worst <= tol,
        losses=losses,
    )
