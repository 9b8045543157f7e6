"""The ReLU family: ReLU with the decoder-norm-weighted L1 penalty (the standard SAE), and JumpReLU with a learned
per-latent threshold and an L0 penalty (Rajamanoharan et al., arXiv 2407.14435)."""

import math
from typing import TYPE_CHECKING, Any, ClassVar, Self

import torch
from torch import Tensor, nn

from dictlab.models.activations.base import Activation
from dictlab.models.activations.registry import register_activation

if TYPE_CHECKING:
    from dictlab.distributed.mesh import LatentRange, Mesh
    from dictlab.models.config import DictionaryConfig


@register_activation
class ReLU(Activation):
    """f = ReLU(pre), trained with λ Σ_i f_i ‖W_dec[i]‖ (scale-invariant L1; plain L1 for unit-norm rows)."""

    name = "relu"
    has_sparsity_penalty = True

    @classmethod
    def from_config(cls, cfg: "DictionaryConfig") -> Self:
        return cls()

    def forward(self, pre: Tensor) -> Tensor:
        return torch.relu(pre)

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor:
        # E_b Σ_i f_bi‖W_dec[i]‖ as (column sums)·norms: one pass over [batch, d_sae] instead of three
        return codes.sum(dim=0) @ decoder_norms / codes.shape[0]


def _rectangle(u: Tensor) -> Tensor:
    return (u.abs() < 0.5).to(u.dtype)


class _JumpReLUFunction(torch.autograd.Function):
    """pre·H(pre − θ) with the straight-through estimator of Rajamanoharan et al."""

    @staticmethod
    def forward(ctx: Any, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, Tensor, None]:
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = grad_out * (pre > threshold).to(pre.dtype)
        # ∂/∂θ [z·H(z−θ)] ≈ −(θ/ε)·K((z−θ)/ε)
        grad_threshold = -(threshold / eps) * _rectangle((pre - threshold) / eps) * grad_out
        return grad_pre, grad_threshold.sum(dim=0), None


class _StepFunction(torch.autograd.Function):
    """H(pre − θ) whose θ-gradient is −(1/ε)·K((pre − θ)/ε); no gradient to pre."""

    @staticmethod
    def forward(ctx: Any, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[None, Tensor, None]:
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_threshold = -(1.0 / eps) * _rectangle((pre - threshold) / eps) * grad_out
        return None, grad_threshold.sum(dim=0), None


@register_activation
class JumpReLU(Activation):
    """f_i = pre_i·H(pre_i − θ_i) with a learned per-latent threshold θ = exp(log_threshold); L0 penalty.

    ``log_threshold``: [d_sae] (this process's latents on a latent shard)."""

    name = "jumprelu"
    has_sparsity_penalty = True
    has_inference_threshold = True
    latent_parameters: ClassVar[dict[str, int]] = {"log_threshold": 0}

    def __init__(self, d_sae: int, init_threshold: float, bandwidth: float) -> None:
        super().__init__()
        self.bandwidth = bandwidth
        self.log_threshold = nn.Parameter(torch.full((d_sae,), math.log(init_threshold)))

    @classmethod
    def from_config(cls, cfg: "DictionaryConfig") -> Self:
        return cls(cfg.d_sae, cfg.jumprelu_init_threshold, cfg.jumprelu_bandwidth)

    def place(self, mesh: "Mesh | None", latents: "LatentRange") -> None:
        super().place(mesh, latents)
        with torch.no_grad():
            self.log_threshold = nn.Parameter(self.log_threshold[latents.start : latents.stop].clone())

    @property
    def threshold(self) -> Tensor:
        """θ: [d_sae], always positive."""
        return self.log_threshold.exp()

    def forward(self, pre: Tensor) -> Tensor:
        return _JumpReLUFunction.apply(pre, self.threshold, self.bandwidth)  # type: ignore[no-any-return]

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor:
        return _StepFunction.apply(pre, self.threshold, self.bandwidth).sum(dim=-1).mean()  # type: ignore[union-attr]

    def inference_threshold(self) -> Tensor:
        return self.threshold.detach()
