"""The ReLU family: ReLU with the decoder-norm-weighted L1 penalty (the standard SAE), and JumpReLU with a learned
per-latent threshold and an L0 penalty (Rajamanoharan et al., arXiv 2407.14435)."""

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
    """f_i = pre_i·H(pre_i − θ_i) with a learned per-latent threshold θ; trained with the L0 penalty.

    ``threshold``: [d_sae] float32 (this process's latents on a latent shard), trained directly. Rajamanoharan et
    al. (arXiv 2407.14435, App. J) train log θ to keep θ positive; dictlab differs, as do decoderesearch/SAELens
    (``sae_lens/saes/jumprelu_sae.py``, v6.54.12) and saprmarks/dictionary_learning
    (``dictionary_learning/trainers/jumprelu.py``): Adam moves a parameter by about lr per step whatever its
    gradient's scale, so through log θ the threshold moves by only ≈ lr·θ per step and a small θ⁰ hardly moves in a
    short run, while θ itself moves by ≈ lr. Positivity is kept by projection: every training forward clamps θ at
    0 in place (θ = 0 is a ReLU gate and its straight-through gradient still acts), and eval mode gates on
    max(θ, 0). θ stays float32 under a bf16-autocast forward (dictlab keeps every parameter float32), so Adam's
    small steps are never rounded away as they are on a bfloat16 parameter. State dicts holding the former
    ``log_threshold`` load as θ = exp(log_threshold).
    """

    name = "jumprelu"
    has_sparsity_penalty = True
    has_inference_threshold = True
    sparsity_penalty_is_l0 = True
    latent_parameters: ClassVar[dict[str, int]] = {"threshold": 0}

    def __init__(self, d_sae: int, init_threshold: float, bandwidth: float) -> None:
        super().__init__()
        self.bandwidth = bandwidth
        self.threshold = nn.Parameter(torch.full((d_sae,), float(init_threshold)))

    @classmethod
    def from_config(cls, cfg: "DictionaryConfig") -> Self:
        return cls(cfg.d_sae, cfg.jumprelu_init_threshold, cfg.jumprelu_bandwidth)

    def place(self, mesh: "Mesh | None", latents: "LatentRange") -> None:
        super().place(mesh, latents)
        with torch.no_grad():
            self.threshold = nn.Parameter(self.threshold[latents.start : latents.stop].clone())

    def gate_threshold(self) -> Tensor:
        """θ used by the gate, [d_sae] and ≥ 0 (training: the parameter itself, projected onto θ ≥ 0 first)."""
        if not self.training:
            return self.threshold.clamp(min=0.0)
        self.threshold.data.clamp_(min=0.0)  # on .data: the penalty's repeat must not invalidate θ saved for backward
        return self.threshold

    def step(self, pre: Tensor) -> Tensor:
        """H(pre − θ) [batch, d_sae], whose θ-gradient is the straight-through −(1/ε)·K((pre − θ)/ε)."""
        return _StepFunction.apply(pre, self.gate_threshold(), self.bandwidth)  # type: ignore[no-any-return]

    def forward(self, pre: Tensor) -> Tensor:
        return _JumpReLUFunction.apply(pre, self.gate_threshold(), self.bandwidth)  # type: ignore[no-any-return]

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor:
        return self.step(pre).sum(dim=-1).mean()

    def inference_threshold(self) -> Tensor:
        return self.threshold.detach().clamp(min=0.0)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        legacy = state_dict.pop(prefix + "log_threshold", None)
        if legacy is not None and prefix + "threshold" not in state_dict:
            state_dict[prefix + "threshold"] = legacy.exp()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
