"""One sparse dictionary module for SAEs, transcoders and crosscoders."""

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor, nn

from dictlab.files.memory import check_allocation
from dictlab.models.activations import Activation
from dictlab.models.config import DictionaryConfig
from dictlab.models.sparse_latents import ActiveLatents, gather_pre_activations, sparse_decode

SPARSE_AUTO_MAX_DENSITY = 1 / 16
"""``loss(sparse=None)`` takes the sparse path when the kept fraction k / d_sae is at most this."""


@dataclass(frozen=True)
class DictionaryLoss:
    """Loss terms of one forward pass (all scalars are batch means).

    The dense path fills ``codes``; the sparse path fills ``active`` and ``active_codes`` instead and never builds
    the [batch, d_sae] code matrix (:meth:`dense_codes` does, on request).
    """

    reconstruction: Tensor
    """Activation-defined reconstruction loss (squared error summed over dims; Matryoshka: summed over prefixes)."""
    sparsity: Tensor | None
    """Unscaled sparsity penalty, None for activations without one."""
    pre: Tensor
    """Pre-activations [batch, d_sae] (without gradient on the sparse path)."""
    x_hat: Tensor
    """Full reconstruction x̂_r [batch, d_out]."""
    codes: Tensor | None = None
    """Latent codes x_q [batch, d_sae] (dense path)."""
    active: ActiveLatents | None = None
    """The selected entries (sparse path)."""
    active_codes: Tensor | None = None
    """Codes of the selected entries [nnz] (sparse path)."""

    def dense_codes(self) -> Tensor:
        """Latent codes x_q [batch, d_sae] from either path."""
        if self.codes is not None:
            return self.codes
        assert self.active is not None and self.active_codes is not None
        return self.active.to_dense(self.active_codes)

    @cached_property
    def firing_counts(self) -> Tensor:
        """[d_sae] int64: samples of the batch in which each latent is nonzero."""
        if self.codes is not None:
            return (self.codes.detach() != 0).sum(dim=0)
        assert self.active is not None and self.active_codes is not None
        return torch.bincount(self.active.cols[self.active_codes != 0], minlength=self.active.d_sae)

    def fired(self) -> Tensor:
        """[d_sae] bool: latents nonzero for some sample of the batch."""
        return self.firing_counts > 0

    def mean_l0(self) -> float:
        """Mean number of nonzero codes per sample."""
        return self.firing_counts.sum().item() / self.x_hat.shape[0]


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
        check_allocation(4 * cfg.n_parameters, f"a dictionary of {cfg.n_parameters:,} float32 parameters")
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
        self.activation: Activation = cfg.activation_class.from_config(cfg)

    @property
    def d_sae(self) -> int:
        return self.cfg.d_sae

    def _check_input(self, x: Tensor, width: int, what: str) -> None:
        if x.dim() != 2 or x.shape[-1] != width:
            raise ValueError(f"{what} must have shape [batch, {width}], got {list(x.shape)}")
        if x.dtype != self.W_enc.dtype and not torch.is_autocast_enabled(x.device.type):
            raise ValueError(
                f"{what} is {x.dtype} but the dictionary's weights are {self.W_enc.dtype}: convert the input "
                f"(x.to({self.W_enc.dtype})) or the dictionary (model.to(dtype))"
            )

    def _centred(self, x_in: Tensor) -> Tensor:
        self._check_input(x_in, self.cfg.d_in, "x_in")
        return x_in - self.b_dec if self.cfg.apply_b_dec_to_input else x_in

    def pre_activations(self, x_in: Tensor) -> Tensor:
        """[batch, d_in] -> [batch, d_sae].

        Computed as [x, 1]·[W_enc; b_enc − b_dec·W_enc] (equal to (x − b_dec)·W_enc + b_enc): the biases ride inside
        the one product. That saves the pass over the [batch, d_sae] output which addmm spends copying a broadcast
        bias in, b_enc's separate column-sum in the backward and, above all, a whole [batch, d_sae]·[d_sae, d_in]
        product that autograd would spend on the gradient of x − b_dec only to sum it into b_dec's.
        """
        self._check_input(x_in, self.cfg.d_in, "x_in")
        bias = self.b_enc - self.b_dec @ self.W_enc if self.cfg.apply_b_dec_to_input else self.b_enc
        ones = x_in.new_ones(x_in.shape[0], 1)
        return torch.cat([x_in, ones], dim=1) @ torch.cat([self.W_enc, bias[None]])

    def active_pre_activations(self, x_in: Tensor, active: ActiveLatents) -> Tensor:
        """Differentiable pre-activations [nnz] of the entries in ``active``; the backward touches only them."""
        return gather_pre_activations(self._centred(x_in), self.W_enc, self.b_enc, active)

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

    @property
    def has_sparse_path(self) -> bool:
        """Whether the activation selects entries structurally (the TopK family), so ``loss(sparse=True)`` works."""
        return self.cfg.has_sparse_path

    def prefers_sparse_path(self) -> bool:
        """The automatic choice: sparse for the TopK family when k / d_sae ≤ ``SPARSE_AUTO_MAX_DENSITY``."""
        return self.has_sparse_path and (self.cfg.k or 0) <= SPARSE_AUTO_MAX_DENSITY * self.d_sae

    def loss(self, x_in: Tensor, x_out: Tensor, sparse: bool | None = None) -> DictionaryLoss:
        """Forward pass with the activation's own loss terms.

        Args:
            sparse: True: the sparse path (TopK family only): one dense encoder product, every other product over
                the active entries. False: the dense reference path. None: :meth:`prefers_sparse_path`.
        """
        self._check_input(x_out, self.cfg.d_out, "x_out")
        if sparse is None:
            sparse = self.prefers_sparse_path()
        if sparse:
            return self._sparse_loss(x_in, x_out)
        pre = self.pre_activations(x_in)
        codes = self.activation(pre)
        x_hat = self.decode(codes)
        reconstruction = self.activation.reconstruction_loss(x_out, x_hat, lambda m: self.decode(codes[:, :m], m))
        sparsity = self.activation.sparsity_penalty(pre, codes, self.decoder_norms())
        return DictionaryLoss(reconstruction, sparsity, pre, x_hat, codes=codes)

    def _sparse_loss(self, x_in: Tensor, x_out: Tensor) -> DictionaryLoss:
        if not self.has_sparse_path:
            raise ValueError(f"the sparse path needs a TopK-family activation, not {self.cfg.activation!r}")
        with torch.no_grad():
            pre = self.pre_activations(x_in)
        active = self.activation.select(pre)
        assert active is not None
        values = torch.relu(self.active_pre_activations(x_in, active))
        x_hat = sparse_decode(active, values, self.W_dec, self.b_dec)
        reconstruction = self.activation.reconstruction_loss(
            x_out, x_hat, lambda m: sparse_decode(active, values, self.W_dec, self.b_dec, n_latents=m)
        )
        return DictionaryLoss(reconstruction, None, pre, x_hat, active=active, active_codes=values)

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
