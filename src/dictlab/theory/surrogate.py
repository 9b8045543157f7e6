"""The single-feature surrogate loss L̃ of Theorem 3.1 and its gradients.

L̃(W_dec, W_enc) = Σ_d M_d ‖w_r^d − σ(w_p^d·W_enc)·W_dec‖², where M_d = Pr(x = x_d e_d)·E[x_d² | x_d > 0] is the
weight of feature d appearing alone. For very sparse data L_SDL ≈ L̃ (Theorem 3.1).
"""

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


@dataclass(frozen=True)
class Sigma:
    """An activation with σ(z)_i ∈ {0, z_i} (Eq. 10): ReLU, JumpReLU with threshold θ, or TopK∘ReLU."""

    kind: Literal["relu", "jumprelu", "topk"] = "relu"
    threshold: float = 0.0
    """JumpReLU: latents fire when z > threshold."""
    k: int = 1
    """TopK: latents kept per input."""

    def __call__(self, z: Tensor) -> Tensor:
        """[batch, n_q] pre-activations -> codes (autograd flows through the kept entries)."""
        if self.kind == "relu":
            return torch.relu(z)
        if self.kind == "jumprelu":
            return z * (z > self.threshold).to(z.dtype)
        if self.kind == "topk":
            kept = torch.zeros_like(z).scatter(-1, z.topk(self.k, dim=-1).indices, 1.0)
            return torch.relu(z) * kept
        raise ValueError(f"unknown activation {self.kind!r}; choose relu, jumprelu or topk")

    @property
    def cutoff(self) -> float:
        """A latent counts as active on a feature when its pre-activation exceeds this (and survives TopK)."""
        return self.threshold if self.kind == "jumprelu" else 0.0


RELU = Sigma("relu")
"""Plain ReLU, the default activation of the constructions."""


def single_feature_weights(n: int, sparsity: float, second_moment: float) -> Tensor:
    """M_d = (1 − S)·S^{n−1}·E[x_d² | x_d > 0] for n i.i.d. features that are each active with probability 1 − S:
    [n] float64."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return torch.full((n,), (1 - sparsity) * sparsity ** (n - 1) * second_moment, dtype=torch.float64)


def _check(W_enc: Tensor, W_dec: Tensor, features_in: Tensor, features_out: Tensor, weights: Tensor) -> None:
    n = features_in.shape[0]
    if features_out.shape[0] != n or weights.shape != (n,):
        raise ValueError(
            f"features_in {list(features_in.shape)}, features_out {list(features_out.shape)} and weights "
            f"{list(weights.shape)} must describe the same n features"
        )
    if W_enc.shape[0] != features_in.shape[1] or W_dec.shape[1] != features_out.shape[1]:
        raise ValueError(
            f"W_enc {list(W_enc.shape)} must be [n_p, n_q] and W_dec {list(W_dec.shape)} [n_q, n_r] for features of "
            f"widths n_p = {features_in.shape[1]}, n_r = {features_out.shape[1]}"
        )
    if W_enc.shape[1] != W_dec.shape[0]:
        raise ValueError(f"W_enc has {W_enc.shape[1]} latents but W_dec has {W_dec.shape[0]}")


def surrogate_residuals(
    W_enc: Tensor, W_dec: Tensor, features_in: Tensor, features_out: Tensor, sigma: Sigma = RELU
) -> Tensor:
    """w_r^d − σ(w_p^d·W_enc)·W_dec for every feature: [n, n_r]."""
    return features_out - sigma(features_in @ W_enc) @ W_dec


def surrogate_loss(
    W_enc: Tensor, W_dec: Tensor, features_in: Tensor, features_out: Tensor, weights: Tensor, sigma: Sigma = RELU
) -> Tensor:
    """L̃ (a scalar)."""
    _check(W_enc, W_dec, features_in, features_out, weights)
    residuals = surrogate_residuals(W_enc, W_dec, features_in, features_out, sigma)
    return (weights * residuals.pow(2).sum(dim=1)).sum()


def surrogate_gradients(
    W_enc: Tensor, W_dec: Tensor, features_in: Tensor, features_out: Tensor, weights: Tensor, sigma: Sigma = RELU
) -> tuple[Tensor, Tensor, Tensor]:
    """(L̃, ∂L̃/∂W_enc, ∂L̃/∂W_dec) by autograd, inside the current activation region."""
    enc = W_enc.detach().clone().requires_grad_(True)
    dec = W_dec.detach().clone().requires_grad_(True)
    loss = surrogate_loss(enc, dec, features_in, features_out, weights, sigma)
    grad_enc, grad_dec = torch.autograd.grad(loss, (enc, dec))
    return loss.detach(), grad_enc, grad_dec
