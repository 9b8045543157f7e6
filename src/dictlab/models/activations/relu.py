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


def keep_where_positive(values: Tensor, key: Tensor) -> Tensor:
    """values·1[key > 0] (same shape): one pass through ATen's ReLU-backward kernel when the dtypes agree."""
    if values.dtype == key.dtype:
        return torch.ops.aten.threshold_backward(values, key, 0)
    return values * (key > 0).to(values.dtype)


class _JumpReLUGate(torch.autograd.Function):
    """(codes [batch, d_sae], per-sample L0 [batch]) for θ ≥ 0: codes = pre·H(pre − θ), L0_b = Σ_i H(pre_bi − θ_i),
    with the straight-through θ-gradients of Rajamanoharan et al. (arXiv 2407.14435): −(θ/ε)·K and
    −(1/ε)·K, K = 1[|pre − θ| < ε/2] the rectangle kernel.

    One node for both outputs, so the kernel window is built once, in the forward, where pre − θ is at hand; the
    backward is one masking pass for pre's gradient and a masked column sum plus a matrix-vector product for θ's.
    The codes are 0 or pre > θ ≥ 0, so 1[codes > 0] is the gate and Σ_i sign(codes_bi) the L0.
    """

    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        shifted = pre - threshold  # [batch, d_sae], in the wider of the two dtypes
        codes = keep_where_positive(pre, shifted)
        l0 = torch.sign(codes).sum(dim=-1, dtype=torch.float32).to(threshold.dtype)
        window = torch.lt(shifted.abs_(), bandwidth / 2, out=shifted) if ctx.needs_input_grad[1] else None
        ctx.save_for_backward(codes, window, threshold)
        ctx.bandwidth = bandwidth
        return codes, l0

    @staticmethod
    def backward(ctx, grad_codes: Tensor, grad_l0: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        codes, window, threshold = ctx.saved_tensors
        grad_pre = keep_where_positive(grad_codes, codes) if ctx.needs_input_grad[0] else None
        grad_threshold = None
        if ctx.needs_input_grad[1]:
            through_codes = (window * grad_codes).sum(dim=0) * threshold  # Σ_b K·g·θ
            through_l0 = grad_l0.to(window.dtype) @ window  # Σ_b K·g_L0
            grad_threshold = ((through_codes + through_l0) / -ctx.bandwidth).to(threshold.dtype)
        return grad_pre, grad_threshold, None


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

    def gate(self, pre: Tensor) -> tuple[Tensor, Tensor]:
        """(codes [batch, d_sae], per-sample L0 [batch]) from one autograd node; both send the straight-through
        gradient to θ."""
        return _JumpReLUGate.apply(pre, self.gate_threshold(), self.bandwidth)  # type: ignore[no-any-return]

    def l0_penalty(self, sample_l0: Tensor) -> Tensor:
        """The sparsity penalty from the per-sample L0 [batch]: its batch mean."""
        return sample_l0.mean()

    def forward(self, pre: Tensor) -> Tensor:
        if not torch.is_grad_enabled():
            threshold = self.gate_threshold().detach()
            return keep_where_positive(pre, pre - threshold)
        return self.gate(pre)[0]

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor:
        return self.l0_penalty(self.gate(pre)[1])

    def codes_and_penalty(self, pre: Tensor, decoder_norms: Tensor) -> tuple[Tensor, Tensor | None]:
        codes, sample_l0 = self.gate(pre)
        return codes, self.l0_penalty(sample_l0)

    def inference_threshold(self) -> Tensor:
        return self.threshold.detach().clamp(min=0.0)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        legacy = state_dict.pop(prefix + "log_threshold", None)
        if legacy is not None and prefix + "threshold" not in state_dict:
            state_dict[prefix + "threshold"] = legacy.exp()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
