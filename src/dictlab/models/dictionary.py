"""One sparse dictionary module for SAEs, transcoders and crosscoders."""

import itertools
import math
from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor, nn

from dictlab.distributed.autograd import replicated_input, sum_partials
from dictlab.distributed.mesh import LatentRange, Mesh
from dictlab.files.memory import check_allocation
from dictlab.models.activations import Activation
from dictlab.models.config import DictionaryConfig
from dictlab.models.sparse_latents import (
    ActiveLatents,
    gather_pre_activations,
    sparse_decode,
    sparse_decode_prefixes,
)

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
            return nonzero_counts(self.codes.detach())
        assert self.active is not None and self.active_codes is not None
        return torch.bincount(self.active.cols[self.active_codes != 0], minlength=self.active.d_sae)

    def fired(self) -> Tensor:
        """[d_sae] bool: latents nonzero for some sample of the batch."""
        return self.firing_counts > 0

    def mean_l0(self) -> Tensor:
        """Mean number of nonzero codes per sample (a 0-d tensor on the batch's device: reading it is the caller's
        choice of when to synchronise)."""
        return self.firing_counts.sum() / self.x_hat.shape[0]


def nonzero_counts(codes: Tensor) -> Tensor:
    """[d_sae] int64: nonzero entries of each column of ``codes`` [batch, d_sae].

    Σ_b |sign(codes)| summed in float32 (exact below 2^24 rows), about half the time of counting ``codes != 0``,
    whose bool → int64 sum copies the matrix once more at eight bytes an entry.
    """
    if not codes.is_floating_point() or codes.shape[0] >= 2**24:
        return (codes != 0).sum(dim=0)
    return torch.sign(codes).abs_().sum(dim=0, dtype=torch.float32).to(torch.int64)


def _normal(
    n_rows: int,
    n_cols: int,
    generator: torch.Generator | None,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
) -> Tensor:
    """``torch.randn(n_rows, n_cols, generator=generator)[rows, cols]`` without holding the whole matrix.

    The matrix is drawn in row chunks whose sizes are multiples of 16 values (the last one absorbing the rest),
    which the CPU generator fills with the same numbers as one call, so each latent shard gets exactly its block
    of the unsharded initialisation.
    """
    if (rows is None and cols is None) or generator is None:
        full = torch.randn(n_rows, n_cols, generator=generator)
        r, c = rows or (0, n_rows), cols or (0, n_cols)
        return full[r[0] : r[1], c[0] : c[1]]
    r0, r1 = rows or (0, n_rows)
    c0, c1 = cols or (0, n_cols)
    step = math.lcm(max(1, 65_536 // n_cols), 16 // math.gcd(n_cols, 16))
    parts, start = [], 0
    while start < n_rows:
        count = step if n_rows - start >= 2 * step else n_rows - start
        block = torch.randn(count, n_cols, generator=generator)
        lo, hi = max(r0, start), min(r1, start + count)
        if lo < hi:
            parts.append(block[lo - start : hi - start, c0:c1].clone())
        start += count
    return torch.cat(parts)


class SparseDictionary(nn.Module):
    """x_q = σ((x_p − b_dec)·W_enc + b_enc), x̂_r = x_q·W_dec + b_dec.

    Parameters use SAELens orientation: ``W_enc: [d_in, d_sae]``, ``b_enc: [d_sae]``, ``W_dec: [d_sae, d_out]``,
    ``b_dec: [d_out]``. Latent i's encoder direction is ``W_enc[:, i]`` and its decoder direction ``W_dec[i]``.
    The pre-encoder subtraction of b_dec applies only when ``cfg.apply_b_dec_to_input``. Without ``cfg.use_bias``
    both biases are zero buffers, which matches the bias-free theory of Tang et al.
    """

    def __init__(
        self, cfg: DictionaryConfig, generator: torch.Generator | None = None, mesh: Mesh | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self._mesh = mesh
        self.latents: LatentRange = (mesh or Mesh.alone()).latent_range(cfg.d_sae)
        """The block of latents this process holds (all of them unless ``mesh`` shards them)."""
        share = self.latents.size / cfg.d_sae
        n_parameters = round(cfg.n_parameters * share)
        check_allocation(4 * n_parameters, f"a dictionary of {n_parameters:,} float32 parameters")
        start, stop = self.latents.start, self.latents.stop
        W_dec = _normal(cfg.d_sae, cfg.d_out, generator, rows=(start, stop))
        W_dec /= W_dec.norm(dim=-1, keepdim=True)
        if cfg.d_in == cfg.d_out:
            W_enc = W_dec.T.clone()
        else:
            W_enc = _normal(cfg.d_in, cfg.d_sae, generator, cols=(start, stop))
            W_enc /= W_enc.norm(dim=0, keepdim=True)
        self.W_enc = nn.Parameter(W_enc.contiguous())
        self.W_dec = nn.Parameter(W_dec)
        if cfg.use_bias:
            self.b_enc = nn.Parameter(torch.zeros(self.latents.size))
            self.b_dec = nn.Parameter(torch.zeros(cfg.d_out))
        else:
            self.register_buffer("b_enc", torch.zeros(self.latents.size))
            self.register_buffer("b_dec", torch.zeros(cfg.d_out))
        self.activation: Activation = cfg.activation_class.from_config(cfg)
        self.activation.place(mesh, self.latents)

    def latent_dims(self) -> dict[str, int]:
        """Entries of :meth:`state_dict` indexed by latent, with their latent dimension (what shards split)."""
        dims = {"W_enc": 1, "W_dec": 0, "b_enc": 0}
        return dims | {f"activation.{name}": dim for name, dim in self.activation.latent_parameters.items()}

    @property
    def mesh(self) -> Mesh:
        """The process layout this dictionary computes over: the one it was built with, else data parallel over
        every process of the run (a process alone outside torchrun)."""
        return self._mesh if self._mesh is not None else Mesh.data_parallel()

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
        return x_in - replicated_input(self.b_dec, self.mesh.tp) if self.cfg.apply_b_dec_to_input else x_in

    def pre_activations(self, x_in: Tensor) -> Tensor:
        """[batch, d_in] -> [batch, d_sae].

        Computed as [x, 1]·[W_enc; b_enc − b_dec·W_enc] (equal to (x − b_dec)·W_enc + b_enc): the biases ride inside
        the one product. That saves the pass over the [batch, d_sae] output which addmm spends copying a broadcast
        bias in, b_enc's separate column-sum in the backward and, above all, a whole [batch, d_sae]·[d_sae, d_in]
        product that autograd would spend on the gradient of x − b_dec only to sum it into b_dec's.
        """
        self._check_input(x_in, self.cfg.d_in, "x_in")
        if self.cfg.apply_b_dec_to_input:
            bias = self.b_enc - replicated_input(self.b_dec, self.mesh.tp) @ self.W_enc
        else:
            bias = self.b_enc
        ones = x_in.new_ones(x_in.shape[0], 1)
        return torch.cat([x_in, ones], dim=1) @ torch.cat([self.W_enc, bias[None]])

    def active_pre_activations(self, x_in: Tensor, active: ActiveLatents) -> Tensor:
        """Differentiable pre-activations [nnz] of the entries in ``active``; the backward touches only them."""
        return gather_pre_activations(self._centred(x_in), self.W_enc, self.b_enc, active)

    def encode(self, x_in: Tensor) -> Tensor:
        """Codes x_q: [batch, d_in] -> [batch, d_sae]."""
        return self.activation(self.pre_activations(x_in))

    def decode(self, codes: Tensor, n_latents: int | None = None) -> Tensor:
        """Codes [batch, ≥ m] -> x̂_r [batch, d_out] from the first ``n_latents`` latents (all by default).

        On a latent shard ``codes`` are this shard's, and the shards' partial reconstructions are summed.
        """
        m = codes.shape[-1] if n_latents is None else self.local_prefix(n_latents)
        if self.latents.whole:
            return torch.addmm(self.b_dec, codes[:, :m], self.W_dec[:m])
        return sum_partials(codes[:, :m] @ self.W_dec[:m], self.mesh.tp) + self.b_dec

    def decode_prefixes(self, codes: Tensor, sizes: list[int]) -> list[Tensor]:
        """x̂_r [batch, d_out] from latents [0, m) for every m of ``sizes`` (increasing), each with b_dec.

        One product per segment [m_{j−1}, m_j), accumulated into running sums: all prefixes for the FLOPs of one
        decode, where ``decode(codes, m)`` per prefix would spend Σ_j m_j / d_sae of them. A latent shard decodes
        each prefix on its own.
        """
        if not self.latents.whole:
            return [self.decode(codes, m) for m in sizes]
        bounds = [0, *sizes] + ([self.d_sae] if sizes[-1] < self.d_sae else [])
        widths = [b - a for a, b in itertools.pairwise(bounds)]
        reconstructions, running = [], self.b_dec
        for part, rows in zip(codes.split(widths, dim=1), self.W_dec.split(widths), strict=True):
            if len(reconstructions) == len(sizes):
                break
            running = torch.addmm(running, part, rows)
            reconstructions.append(running)
        return reconstructions

    def local_prefix(self, n_latents: int) -> int:
        """How many of this process's latents lie among the first ``n_latents`` of the dictionary."""
        return min(max(n_latents - self.latents.start, 0), self.latents.size)

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
        """Per-source view of the decoder: [d_sae, n_sources, d_source] (this process's latents)."""
        return self.W_dec.view(self.latents.size, self.cfg.n_sources, self.cfg.d_source)

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
        codes, sparsity = self.activation.codes_and_penalty(pre, self.decoder_norms())
        prefixes = self.activation.reconstruction_prefixes
        decoded: dict[int, Tensor] = {}
        if prefixes:  # the prefixes and the whole from one product per segment
            *partial, x_hat = self.decode_prefixes(codes, [*prefixes, self.d_sae])
            decoded = dict(zip(prefixes, partial, strict=True))
        else:
            x_hat = self.decode(codes)

        def decode_prefix(m: int) -> Tensor:
            return decoded[m] if m in decoded else self.decode(codes, m)

        reconstruction = self.activation.reconstruction_loss(x_out, x_hat, decode_prefix)
        return DictionaryLoss(reconstruction, sparsity, pre, x_hat, codes=codes)

    def _sparse_loss(self, x_in: Tensor, x_out: Tensor) -> DictionaryLoss:
        if not self.has_sparse_path:
            raise ValueError(f"the sparse path needs a TopK-family activation, not {self.cfg.activation!r}")
        with torch.no_grad():
            pre = self.pre_activations(x_in)
        active = self.activation.select(pre)
        assert active is not None
        values = torch.relu(self.active_pre_activations(x_in, active))
        prefixes = self.activation.reconstruction_prefixes
        decoded: dict[int, Tensor] = {}
        if prefixes and self.latents.whole:  # the prefixes and the whole from one bag of the entries
            *partial, x_hat = sparse_decode_prefixes(active, values, self.W_dec, [*prefixes, self.d_sae], self.b_dec)
            decoded = dict(zip(prefixes, partial, strict=True))
        else:
            x_hat = self.decode_active(active, values)

        def decode_prefix(m: int) -> Tensor:
            return decoded[m] if m in decoded else self.decode_active(active, values, m)

        reconstruction = self.activation.reconstruction_loss(x_out, x_hat, decode_prefix)
        return DictionaryLoss(reconstruction, None, pre, x_hat, active=active, active_codes=values)

    def decode_active(self, active: ActiveLatents, values: Tensor, n_latents: int | None = None) -> Tensor:
        """x̂_r [batch, d_out] from the selected entries' codes ``values`` [nnz] (the sparse path's decoder),
        using the first ``n_latents`` latents only (all by default)."""
        m = None if n_latents is None else self.local_prefix(n_latents)
        if self.latents.whole:
            return sparse_decode(active, values, self.W_dec, self.b_dec, n_latents=m)
        return sum_partials(sparse_decode(active, values, self.W_dec, n_latents=m), self.mesh.tp) + self.b_dec

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
