"""One sparse dictionary module for SAEs, transcoders and crosscoders."""

from typing import NamedTuple

import torch
from torch import Tensor, nn

from dictlab.models.activations import Activation, build_activation
from dictlab.models.config import DictionaryConfig


class DictionaryLoss(NamedTuple):
    """Loss terms of one forward pass (all scalars are batch means)."""

    reconstruction: Tensor
    """Activation-defined reconstruction loss (squared error summed over dims; Matryoshka: summed over prefixes)."""
    sparsity: Tensor | None
    """Unscaled sparsity penalty, None for activations without one."""
    pre: Tensor
    """Pre-activations [batch, d_sae]."""
    codes: Tensor
    """Latent codes x_q [batch, d_sae]."""
    x_hat: Tensor
    """Full reconstruction x̂_r [batch, d_out]."""


class SparseDictionary(nn.Module):
    """x_q = σ((x_p − b_dec)·W_enc + b_enc), x̂_r = x_q·W_dec + b_dec.

    Parameters use SAELens orientation: ``W_enc: [d_in, d_sae]``, ``b_enc: [d_sae]``, ``W_dec: [d_sae, d_out]``,
    ``b_dec: [d_out]``. Latent i's encoder direction is ``W_enc[:, i]`` and its decoder direction ``W_dec[i]``.
    The pre-encoder subtraction of b_dec applies only when ``cfg.apply_b_dec_to_input``. Without ``cfg.use_bias``
    both biases are zero buffers, which matches the bias-free theory of Tang et al.
    """

    def __init__(self, cfg: DictionaryConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        W_dec = torch.randn(cfg.d_sae, cfg.d_out, generator=generator)
        W_dec /= W_dec.norm(dim=-1, keepdim=True)
        if cfg.d_in == cfg.d_out:
            W_enc = W_dec.T.clone()
        else:
            W_enc = torch.randn(cfg.d_in, cfg.d_sae, generator=generator)
            W_enc /= W_enc.norm(dim=0, keepdim=True)
        self.W_enc = nn.Parameter(W_enc.contiguous())
        self.W_dec = nn.Parameter(W_dec)
        if cfg.use_bias:
            self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
            self.b_dec = nn.Parameter(torch.zeros(cfg.d_out))
        else:
            self.register_buffer("b_enc", torch.zeros(cfg.d_sae))
            self.register_buffer("b_dec", torch.zeros(cfg.d_out))
        self.activation: Activation = build_activation(cfg)

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    def _check_input(self, x: Tensor, width: int, what: str) -> None:
        if x.dim() != 2 or x.shape[-1] != width:
            raise ValueError(f"{what} must have shape [batch, {width}], got {list(x.shape)}")

    def pre_activations(self, x_in: Tensor) -> Tensor:
        """[batch, d_in] -> [batch, d_sae]."""
        self._check_input(x_in, self.cfg.d_in, "x_in")
        if self.cfg.apply_b_dec_to_input:
            x_in = x_in - self.b_dec
        return torch.addmm(self.b_enc, x_in, self.W_enc)

    def encode(self, x_in: Tensor) -> Tensor:
        """Codes x_q: [batch, d_in] -> [batch, d_sae]."""
        return self.activation(self.pre_activations(x_in))

    def decode(self, codes: Tensor, n_latents: int | None = None) -> Tensor:
        """[batch, m] codes of the first ``m`` latents (m = d_sae by default) -> x̂_r [batch, d_out]."""
        m = codes.shape[-1] if n_latents is None else n_latents
        return torch.addmm(self.b_dec, codes, self.W_dec[:m])

    def forward(self, x_in: Tensor) -> Tensor:
        """Reconstruction x̂_r: [batch, d_in] -> [batch, d_out]."""
        return self.decode(self.encode(x_in))

    def decoder_norms(self) -> Tensor:
        """Per-latent decoder norm used by norm-weighted penalties: [d_sae].

        For a crosscoder this is the sum of the per-source block norms Σ_s ‖W_dec[i, s]‖.
        """
        if self.cfg.kind == "crosscoder":
            return self.decoder_blocks().norm(dim=-1).sum(dim=-1)
        return self.W_dec.norm(dim=-1)

    def decoder_blocks(self) -> Tensor:
        """Per-source view of the decoder: [d_sae, n_sources, d_source]."""
        return self.W_dec.view(self.cfg.d_sae, self.cfg.n_sources, self.cfg.d_source)

    def loss(self, x_in: Tensor, x_out: Tensor) -> DictionaryLoss:
        """Forward pass with the activation's own loss terms."""
        self._check_input(x_out, self.cfg.d_out, "x_out")
        pre = self.pre_activations(x_in)
        codes = self.activation(pre)
        x_hat = self.decode(codes)
        reconstruction = self.activation.reconstruction_loss(codes, x_out, x_hat, self.decode)
        sparsity = self.activation.sparsity_penalty(pre, codes, self.decoder_norms())
        return DictionaryLoss(reconstruction, sparsity, pre, codes, x_hat)

    @torch.no_grad()
    def fold_input_scale_(self, scale: float) -> None:
        """Make a dictionary trained on ``scale · x`` act on raw ``x`` (in place; the output is in raw units too).

        W_enc ← scale·W_enc, W_dec ← W_dec/scale, b_dec ← b_dec/scale; pre-activations, codes and thresholds are
        unchanged, so every activation function behaves exactly as in training. Decoder rows end with norm
        1/scale.
        """
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.W_enc.mul_(scale)
        self.W_dec.div_(scale)
        self.b_dec.div_(scale)

    @torch.no_grad()
    def normalize_decoder_(self) -> None:
        """Rescale every decoder row to unit norm (in place)."""
        self.W_dec /= self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    @torch.no_grad()
    def remove_radial_decoder_grad_(self) -> None:
        """Project out the component of W_dec.grad parallel to each (unit) decoder row."""
        if self.W_dec.grad is None:
            return
        rows = self.W_dec / self.W_dec.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        radial = (self.W_dec.grad * rows).sum(dim=-1, keepdim=True)
        self.W_dec.grad -= radial * rows
