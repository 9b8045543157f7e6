"""The contract every activation σ fulfils: ``forward(pre) -> codes`` with σ(z)_i ∈ {0, z_i}.

An activation owns the loss terms that belong to it (an optional sparsity penalty, a reconstruction loss over
latent prefixes) and declares its capabilities as class attributes, which the registry, configs, trainer, bench and
exporters read instead of checking names.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Self

import torch
from torch import Tensor, nn

from dictlab.distributed.mesh import LatentRange, Mesh
from dictlab.models.sparse_latents import ActiveLatents

if TYPE_CHECKING:
    from dictlab.models.config import DictionaryConfig

PrefixDecoder = Callable[[int], Tensor]
"""``decode_prefix(m) -> x̂`` [batch, d_out]: the reconstruction from latents [0, m) only (plus b_dec)."""


class _SquaredError(torch.autograd.Function):
    """Σ‖x̂ − x‖² / rows in two passes over the residual (forward: difference and one dot product, at least in fp32;
    backward: one scaled copy), where the composed ops spend about seven."""

    @staticmethod
    def forward(ctx, x_out: Tensor, x_hat: Tensor) -> Tensor:  # type: ignore[override]
        diff = x_hat - x_out
        ctx.save_for_backward(diff)
        ctx.dtypes = (x_out.dtype, x_hat.dtype)
        ctx.rows = diff.numel() // max(diff.shape[-1], 1) if diff.dim() else 1
        with torch.autocast(diff.device.type, enabled=False):
            flat = diff.reshape(-1)
            flat = flat.float() if flat.dtype in (torch.float16, torch.bfloat16) else flat
            return (torch.dot(flat, flat) / ctx.rows).to(diff.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        (diff,) = ctx.saved_tensors
        scaled = diff * (2 * grad / ctx.rows)
        grad_out = -scaled.to(ctx.dtypes[0]) if ctx.needs_input_grad[0] else None
        grad_hat = scaled.to(ctx.dtypes[1]) if ctx.needs_input_grad[1] else None
        return grad_out, grad_hat


def squared_error(x_out: Tensor, x_hat: Tensor) -> Tensor:
    """E‖x_r − x̂_r‖²: squared error summed over dimensions, averaged over the batch (the paper's L_SDL).

    ``x_out, x_hat``: [..., d] (broadcast), averaged over every leading position.
    """
    if x_out.shape != x_hat.shape:
        return (x_out - x_hat).pow(2).sum(dim=-1).mean()
    return _SquaredError.apply(x_out, x_hat)


class Activation(nn.Module):
    """Base class: ``forward(pre) -> codes``, both [batch, d_sae], every code 0 or its pre-activation.

    Subclasses set ``name`` and the capability flags, implement :meth:`from_config`, and are registered with
    :func:`dictlab.models.activations.register_activation`.
    """

    name: ClassVar[str]
    """Registry key, the value of ``DictionaryConfig.activation``."""
    uses_k: ClassVar[bool] = False
    """Sparsity is set by ``DictionaryConfig.k`` (required, ≤ d_sae)."""
    has_sparsity_penalty: ClassVar[bool] = False
    """Trains with a sparsity coefficient (``RecipeConfig.sparsity_coefficient`` must be > 0)."""
    has_sparse_path: ClassVar[bool] = False
    """Implements :meth:`select`, so the sparse training path (and AuxK) applies."""
    has_inference_threshold: ClassVar[bool] = False
    """In eval mode the codes are pre·1[pre > θ] with the per-latent θ of :meth:`inference_threshold`."""
    sparsity_penalty_is_l0: ClassVar[bool] = False
    """:meth:`sparsity_penalty` is the batch-mean L0 (with a straight-through gradient), so
    ``RecipeConfig.target_l0`` can steer it (JumpReLU)."""

    latent_parameters: ClassVar[dict[str, int]] = {}
    """Per-latent parameters and buffers (name → latent dimension): latent shards split them."""
    _mesh: Mesh | None = None
    latents: LatentRange | None = None
    """The dictionary's latents this process holds, set by :meth:`place` (None: all of them)."""

    @classmethod
    def from_config(cls, cfg: "DictionaryConfig") -> Self:
        """Instantiate from a validated config."""
        raise NotImplementedError

    def place(self, mesh: Mesh | None, latents: LatentRange) -> None:
        """Compute over ``mesh`` (None: data parallel over the run's processes) on the block ``latents`` of the
        dictionary's latents; per-latent parameters of a subclass keep only that block."""
        self._mesh = mesh
        self.latents = latents

    @property
    def mesh(self) -> Mesh:
        return self._mesh if self._mesh is not None else Mesh.data_parallel()

    @property
    def sharded(self) -> bool:
        """Whether this process holds only a block of the latents (latent parallelism)."""
        return self.latents is not None and not self.latents.whole

    @classmethod
    def check_config(cls, cfg: "DictionaryConfig") -> None:
        """Raise ValueError when ``cfg`` is invalid for this activation (beyond the capability checks)."""

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor | None:
        """Unscaled sparsity penalty (mean over the batch), or None when sparsity is structural (TopK)."""
        return None

    def codes_and_penalty(self, pre: Tensor, decoder_norms: Tensor) -> tuple[Tensor, Tensor | None]:
        """(codes, sparsity penalty) of one forward pass: ``forward`` then :meth:`sparsity_penalty`; an activation
        overrides it to compute both in one autograd node (JumpReLU)."""
        codes = self(pre)
        return codes, self.sparsity_penalty(pre, codes, decoder_norms)

    def select(self, pre: Tensor) -> ActiveLatents | None:
        """The entries this activation keeps, as index lists (the sparse path), or None when it has no
        structural sparsity (ReLU, JumpReLU: their codes are dense until training makes them sparse)."""
        return None

    @property
    def reconstruction_prefixes(self) -> list[int]:
        """The latent-prefix sizes m < d_sae, increasing, whose reconstructions :meth:`reconstruction_loss` asks
        ``decode_prefix`` for (the sparse path decodes them together with the full reconstruction)."""
        return []

    def reconstruction_loss(self, x_out: Tensor, x_hat: Tensor, decode_prefix: PrefixDecoder) -> Tensor:
        """Training reconstruction loss given the full reconstruction ``x_hat``; default: its squared error."""
        return squared_error(x_out, x_hat)

    def inference_threshold(self) -> Tensor | None:
        """θ [d_sae] of the eval-mode codes pre·1[pre > θ] (activations with ``has_inference_threshold``), or None
        while it is unset (e.g. BatchTopK before training)."""
        return None


def scatter_top(pre: Tensor, values: Tensor, indices: Tensor) -> Tensor:
    """Codes [..., d_sae] that are ReLU(values) at ``indices`` (along the last dimension) and 0 elsewhere."""
    return torch.zeros_like(pre).scatter_(-1, indices, torch.relu(values))
