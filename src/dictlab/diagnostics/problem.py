"""The nonnegative L1 dictionary problem (P_K) and its ingredients.

    (P_K)   min_{W, A ≥ 0, b}  ½‖X − A·W − 1·bᵀ‖²_F + λ·Σ_{n,k} a_nk   s.t. ‖w_k‖₂ = 1 for every atom k.

Conventions (rows are data points, as in the rest of dictlab): data ``X: [N, D]``, atoms ``W: [K, D]`` with unit
rows (the normalised decoder rows of an SAE), codes ``A: [N, K] ≥ 0``, optional bias ``b: [D]``, residuals
``R = X − A·W − b: [N, D]``. Derivations: docs/optimality.md, after Dorrell (arXiv 2606.02385).
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor


class DiagnosticsInputError(ValueError):
    """Data, dictionary or λ given to the optimality diagnostics is unusable (shape, NaN/Inf, empty, sign)."""


@dataclass(frozen=True)
class L1Dictionary:
    """A point of (P_K) up to its codes: unit-norm atoms and an optional bias."""

    atoms: Tensor
    """W: [K, D], unit rows."""
    bias: Tensor | None
    """b: [D], or None for the bias-free problem."""

    @property
    def n_atoms(self) -> int:
        return self.atoms.shape[0]

    @property
    def dim(self) -> int:
        return self.atoms.shape[1]

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> "L1Dictionary":
        bias = None if self.bias is None else self.bias.to(device=device, dtype=dtype)
        return L1Dictionary(self.atoms.to(device=device, dtype=dtype), bias)

    def centered(self, X: Tensor) -> Tensor:
        """X − b (X itself without a bias): [N, D]."""
        return X if self.bias is None else X - self.bias

    def residuals(self, X: Tensor, codes: Tensor) -> Tensor:
        """R = X − A·W − b: [N, D] from dense codes [N, K]."""
        return self.centered(X) - codes @ self.atoms


def check_lambda(lam: float) -> float:
    """λ must be a finite positive number."""
    try:
        value = float(lam)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(lam, bool) or not math.isfinite(value) or value <= 0:
        raise DiagnosticsInputError(f"λ must be a finite positive number, got {lam!r}")
    return value


def check_data(X: Tensor, dim: int | None = None, what: str = "data") -> Tensor:
    """Validate activations ``X: [N, D]``: two-dimensional, non-empty, finite, of width ``dim`` when given."""
    if not isinstance(X, Tensor):
        raise DiagnosticsInputError(f"{what} must be a torch.Tensor, got {type(X).__name__}")
    if X.dim() != 2:
        raise DiagnosticsInputError(f"{what} must have shape [N, D], got {list(X.shape)}")
    if X.shape[0] == 0:
        raise DiagnosticsInputError(f"{what} is empty (0 rows)")
    if dim is not None and X.shape[1] != dim:
        raise DiagnosticsInputError(f"{what} has width {X.shape[1]} but the dictionary's atoms have width {dim}")
    bad = (~torch.isfinite(X)).any(dim=1)
    if bad.any():
        raise DiagnosticsInputError(f"{what} has {int(bad.sum())} of {X.shape[0]} rows containing NaN or Inf")
    return X


def make_dictionary(atoms: Tensor, bias: Tensor | None = None) -> L1Dictionary:
    """Validate and normalise atoms ``[K, D]`` (zero rows are refused) and the optional bias ``[D]``."""
    check_data(atoms, what="atoms")
    norms = atoms.norm(dim=1)
    if (norms == 0).any():
        raise DiagnosticsInputError(f"{int((norms == 0).sum())} atoms are zero vectors and have no direction")
    if bias is not None:
        if bias.shape != (atoms.shape[1],):
            raise DiagnosticsInputError(f"bias must have shape [{atoms.shape[1]}], got {list(bias.shape)}")
        if not torch.isfinite(bias).all():
            raise DiagnosticsInputError("bias contains NaN or Inf")
    return L1Dictionary(atoms / norms[:, None], bias)


def objective(X: Tensor, dictionary: L1Dictionary, codes: Tensor, lam: float) -> float:
    """Value of (P_K): ½‖X − A·W − b‖²_F + λ·ΣA for dense codes [N, K]."""
    R = dictionary.residuals(X, codes)
    return float(0.5 * R.pow(2).sum() + lam * codes.sum())
