"""Ground-truth feature matrices with bounded interference: the projected gradient descent of LRB App. C.

Matrices are row-wise, ``[n_features, dim]``, row i = unit vector of feature i. Interference is the signed
maximum off-diagonal inner product max_{i≠j} ⟨w_i, w_j⟩ (negative inner products are never constrained).
"""

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PGDReport:
    """Outcome of :func:`interference_pgd`; plain Python numbers, JSON-safe via ``dataclasses.asdict``."""

    iterations: int
    max_interference: float
    max_abs_interference: float
    converged: bool


def interference_stats(features: Tensor) -> tuple[float, float]:
    """Signed and absolute maximum off-diagonal inner product of the rows of ``features [n, d]`` (n ≥ 2).

    Computed in float64. Returns ``(max_{i≠j} ⟨w_i, w_j⟩, max_{i≠j} |⟨w_i, w_j⟩|)``.
    """
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be [n_features >= 2, dim], got shape {tuple(features.shape)}")
    as_float64 = features.double()
    gram = as_float64 @ as_float64.T
    off_diagonal = gram[~torch.eye(features.shape[0], dtype=torch.bool, device=gram.device)]
    return off_diagonal.max().item(), off_diagonal.abs().max().item()


def interference_loss(
    features: Tensor, max_interference: float, *, eps: float = 1e-3, neg_weight: float = 1e-3
) -> tuple[Tensor, Tensor]:
    """Soft-thresholded interference loss (LRB Eq. 28) and its gradient for row-wise ``features [n, d]``.

    L = Σ_{i≠j} max(0, G_ij − (M − ε))² + λ Σ_{i≠j} max(0, G_ij)², G = W Wᵀ, sum over ordered pairs.
    Gradient: ∂L/∂W = 2 F W with F_ij = 2 max(0, G_ij − (M − ε)) + 2λ max(0, G_ij) off the diagonal, F_ii = 0.
    Returns ``(loss [], grad [n, d])`` in the dtype of ``features``.
    """
    gram = features @ features.T
    gram.fill_diagonal_(0.0)  # 0 contributes nothing to either hinge below (M − ε > 0 is not assumed)
    over_threshold = (gram - (max_interference - eps)).clamp_min(0.0)
    over_threshold.fill_diagonal_(0.0)
    positive = gram.clamp_min(0.0)
    loss = over_threshold.square().sum() + neg_weight * positive.square().sum()
    pair_weights = 2.0 * over_threshold + 2.0 * neg_weight * positive
    return loss, 2.0 * pair_weights @ features


def welch_bound(n_features: int, dim: int) -> float:
    """Lower bound sqrt((n − d) / (d (n − 1))) on max |⟨w_i, w_j⟩| of n unit vectors in R^d (0 if n ≤ d)."""
    if n_features <= dim or n_features < 2:
        return 0.0
    return math.sqrt((n_features - dim) / (dim * (n_features - 1)))


def interference_pgd(
    n_features: int,
    dim: int,
    max_interference: float,
    *,
    eps: float = 1e-3,
    neg_weight: float = 1e-3,
    step: float = 0.05,
    max_iter: int = 10_000,
    generator: torch.Generator,
) -> tuple[Tensor, PGDReport]:
    """Random unit features pushed by PGD until max_{i≠j} ⟨w_i, w_j⟩ ≤ ``max_interference`` (LRB Eqs. 27–29).

    Gaussian init (float64, drawn from ``generator``), rows normalised; then W ← W − step·∇L (Eq. 28 loss,
    :func:`interference_loss`) and renormalise, checking the stop rule before every step. The state is rounded
    to float32 after every renormalisation, so the stop rule is evaluated on exactly the returned values.
    Returns ``(features [n_features, dim] float32 with unit rows, report)``; raises ValueError if the bound is
    not met within ``max_iter`` steps.
    """
    if n_features < 2 or dim < 1:
        raise ValueError(f"need n_features >= 2 and dim >= 1, got n_features={n_features}, dim={dim}")
    if not -1.0 < max_interference < 1.0:
        raise ValueError(f"max_interference must lie in (-1, 1), got {max_interference}")
    if not (eps > 0 and neg_weight >= 0 and step > 0 and max_iter >= 0):
        raise ValueError(
            f"need eps > 0, neg_weight >= 0, step > 0, max_iter >= 0; got eps={eps}, "
            f"neg_weight={neg_weight}, step={step}, max_iter={max_iter}"
        )

    def normalised_float32_grid(matrix: Tensor) -> Tensor:
        return (matrix / matrix.norm(dim=1, keepdim=True)).float().double()

    features = normalised_float32_grid(torch.randn(n_features, dim, generator=generator, dtype=torch.float64))
    iterations = 0
    while True:
        max_signed, max_abs = interference_stats(features)
        if max_signed <= max_interference:
            report = PGDReport(iterations, max_signed, max_abs, converged=True)
            return features.float(), report
        if iterations >= max_iter:
            break
        _, grad = interference_loss(features, max_interference, eps=eps, neg_weight=neg_weight)
        features = normalised_float32_grid(features - step * grad)
        iterations += 1

    raise ValueError(
        f"interference PGD did not reach max signed interference <= {max_interference} within {max_iter} "
        f"iterations (n_features={n_features}, dim={dim}): achieved {max_signed:.4f} "
        f"(max |.| {max_abs:.4f}). M may be infeasible: the Welch bound {welch_bound(n_features, dim):.4f} "
        f"limits max |<w_i, w_j>|, a signed max <= 0 needs n_features <= 2*dim and < 0 needs "
        f"n_features <= dim + 1 (Rankin); otherwise raise max_iter or lower step."
    )
