"""The sparse training path: active latents as index lists, and products that touch only them.

A TopK-family dictionary needs one dense product per step, the encoder's ``x·W_enc``; every other product of the
forward and backward pass involves only the k active latents of each sample. :class:`ActiveLatents` names those
entries, :func:`gather_pre_activations` turns their (already computed) pre-activations into differentiable values
whose backward touches only them, and :func:`sparse_decode` is the decoder as a weighted bag of decoder rows
(``embedding_bag``), whose backward also touches only the active rows.

Per sample that is ≈ 2·d_in·d_sae FLOPs for the encoder plus O(k·d) for the rest, against ≈ 10·d_in·d_sae for the
dense path.
"""

from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor


def bag_offsets(bags: Tensor, n_bags: int) -> Tensor:
    """[n_bags] int64: where each bag's entries begin once the entries are ordered by bag (``bags`` [nnz] holds
    each entry's bag; the ``embedding_bag`` offsets convention)."""
    counts = torch.bincount(bags, minlength=n_bags)
    return torch.cumsum(counts, 0) - counts


@dataclass(frozen=True, eq=False)
class ActiveLatents:
    """The active (selected) entries of a [batch, d_sae] code matrix, in row-major order.

    Entry e is latent ``cols[e]`` of sample ``rows[e]``; sample b's entries are ``offsets[b]:offsets[b+1]``.
    """

    rows: Tensor
    """[nnz] int64, nondecreasing."""
    cols: Tensor
    """[nnz] int64."""
    offsets: Tensor
    """[batch] int64: start of each sample's entries (the embedding_bag convention)."""
    pre: Tensor
    """[nnz] pre-activations of the entries (detached; selection does not carry gradient)."""
    batch: int
    d_sae: int

    @classmethod
    def from_row_topk(cls, values: Tensor, indices: Tensor, d_sae: int) -> "ActiveLatents":
        """From per-sample selections ``values, indices: [batch, k]``."""
        batch, k = indices.shape
        rows = torch.arange(batch, device=indices.device).repeat_interleave(k)
        offsets = torch.arange(0, batch * k, k, device=indices.device)
        return cls(rows, indices.reshape(-1), offsets, values.detach().reshape(-1), batch, d_sae)

    @classmethod
    def from_entries(cls, pre: Tensor, rows: Tensor, cols: Tensor, values: Tensor | None = None) -> "ActiveLatents":
        """The entries ``(rows[e], cols[e])`` of a [batch, d_sae] pre-activation matrix, ``rows`` nondecreasing;
        ``values`` [nnz], when given, are their pre-activations (else read from ``pre``)."""
        batch, d_sae = pre.shape
        values = pre.detach()[rows, cols] if values is None else values.detach()
        return cls(rows, cols, bag_offsets(rows, batch), values, batch, d_sae)

    @classmethod
    def from_flat(cls, pre: Tensor, flat_indices: Tensor) -> "ActiveLatents":
        """From indices into ``pre.reshape(-1)`` (any order) of a [batch, d_sae] pre-activation matrix."""
        batch, d_sae = pre.shape
        flat_indices = flat_indices.sort().values
        rows, cols = flat_indices // d_sae, flat_indices % d_sae
        return cls(rows, cols, bag_offsets(rows, batch), pre.detach().reshape(-1)[flat_indices], batch, d_sae)

    @classmethod
    def from_mask(cls, pre: Tensor, mask: Tensor) -> "ActiveLatents":
        """The entries where ``mask`` [batch, d_sae] is true."""
        return cls.from_flat(pre, mask.reshape(-1).nonzero().squeeze(-1))

    @property
    def nnz(self) -> int:
        return self.cols.numel()

    def to_dense(self, values: Tensor) -> Tensor:
        """[batch, d_sae] matrix holding ``values`` [nnz] at the active entries, zero elsewhere."""
        dense = values.new_zeros(self.batch, self.d_sae)
        return dense.index_put_((self.rows, self.cols), values)

    @cached_property
    def by_latent(self) -> tuple[Tensor, Tensor]:
        """The entries grouped by latent: (``order`` [nnz], entry ids sorted by column, stable; ``starts``
        [d_sae], where latent i's entries begin in ``order``) — the bags of a transposed ``embedding_bag``.
        Computed once, on first use (the encoder's and the decoder's backward share it)."""
        return torch.argsort(self.cols, stable=True), bag_offsets(self.cols, self.d_sae)


class _ActivePreActivations(torch.autograd.Function):
    """Value: the given active pre-activations. Backward: gradients of (x_c·W_enc + b_enc)[rows, cols]."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx, x_c: Tensor, W_enc: Tensor, b_enc: Tensor, active: ActiveLatents
    ) -> Tensor:
        ctx.save_for_backward(x_c, W_enc)
        ctx.active = active
        return active.pre.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None, None]:  # type: ignore[override]
        x_c, W_enc = ctx.saved_tensors
        active: ActiveLatents = ctx.active
        grad = grad.to(W_enc.dtype).contiguous()  # bf16 under autocast; the products run in the weights' dtype
        grad_x = grad_W = grad_b = None
        # Both products are weighted bags over the nnz entries (faster than CSR × dense products on the CPU).
        if ctx.needs_input_grad[0]:  # Σ_i g[b, i]·W_enc[:, i]: [batch, d_in]
            grad_x = F.embedding_bag(
                active.cols, W_enc.T.contiguous(), active.offsets, mode="sum", per_sample_weights=grad
            )
        if ctx.needs_input_grad[1]:  # Σ_b g[b, i]·x_c[b]: [d_sae, d_in], stored transposed like W_enc
            order, starts = active.by_latent
            grad_W = F.embedding_bag(
                active.rows[order], x_c.contiguous(), starts, mode="sum", per_sample_weights=grad[order]
            ).T
        if ctx.needs_input_grad[2]:
            grad_b = grad.new_zeros(active.d_sae).index_add_(0, active.cols, grad)
        return grad_x, grad_W, grad_b, None


def gather_pre_activations(x_c: Tensor, W_enc: Tensor, b_enc: Tensor, active: ActiveLatents) -> Tensor:
    """Differentiable pre-activations of the active entries: [nnz].

    Equal to ``(x_c @ W_enc + b_enc)[active.rows, active.cols]`` (taken from ``active.pre``, computed once densely
    without gradient); the backward builds the gradients of ``x_c [batch, d_in]``, ``W_enc [d_in, d_sae]`` and
    ``b_enc [d_sae]`` from the nnz active entries only (weighted bags of rows).
    """
    return _ActivePreActivations.apply(x_c, W_enc, b_enc, active)


class _SparseDecode(torch.autograd.Function):
    """Value: Σ_e values[e]·W_dec[cols[e]] per sample. Backward: both gradients from the nnz entries only."""

    @staticmethod
    def forward(ctx, values: Tensor, W_dec: Tensor, active: ActiveLatents) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(values, W_dec)
        ctx.active = active
        return F.embedding_bag(active.cols, W_dec, active.offsets, mode="sum", per_sample_weights=values)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        values, W_dec = ctx.saved_tensors
        active: ActiveLatents = ctx.active
        grad = grad.to(W_dec.dtype).contiguous()
        grad_values = grad_W = None
        if ctx.needs_input_grad[0]:  # grad[rows[e]] · W_dec[cols[e]]: ATen's own kernel, each entry's bag given
            grad_values = torch.ops.aten._embedding_bag_per_sample_weights_backward(
                grad, W_dec, active.cols, active.offsets, active.rows, 0, -1
            )
        if ctx.needs_input_grad[1]:  # Σ_{e: cols[e] = i} values[e]·grad[rows[e]]: a bag per latent, [d_sae, d_out]
            order, starts = active.by_latent
            grad_W = F.embedding_bag(active.rows[order], grad, starts, mode="sum", per_sample_weights=values[order])
        return grad_values, grad_W, None


def sparse_decode(
    active: ActiveLatents, values: Tensor, W_dec: Tensor, b_dec: Tensor | None = None, n_latents: int | None = None
) -> Tensor:
    """x̂ = Σ_e values[e]·W_dec[cols[e]] per sample (+ b_dec): [batch, d_out].

    With ``n_latents = m`` only latents [0, m) contribute (a Matryoshka prefix). Differentiable in ``values``
    and ``W_dec``; the backward touches only the active rows: W_dec's gradient is a weighted bag of gradient rows
    per latent (ATen's own backward of the bag, a dense [d_sae, d_out] scatter, is several times slower on the
    CPU).
    """
    if n_latents is not None and n_latents < active.d_sae:
        values = values * (active.cols < n_latents).to(values.dtype)
    values = values.to(W_dec.dtype)  # autocast leaves embedding_bag alone; it needs matching dtypes
    out = _SparseDecode.apply(values, W_dec, active)
    return out if b_dec is None else out + b_dec


class _RunningSums(torch.autograd.Function):
    """[batch, J, d] segment sums → the J running sums over the segment axis, each [batch, d]; the backward is the
    reversed running sum of their gradients. Written as J additions of [batch, d] slices: ATen's cumsum and flip
    along a middle axis take several times longer."""

    @staticmethod
    def forward(ctx, parts: Tensor) -> tuple[Tensor, ...]:  # type: ignore[override]
        sums = [parts[:, 0].clone()]
        for j in range(1, parts.shape[1]):
            sums.append(sums[-1] + parts[:, j])
        return tuple(sums)

    @staticmethod
    def backward(ctx, *grads: Tensor) -> Tensor:  # type: ignore[override]
        grad_parts = grads[-1].new_empty(grads[-1].shape[0], len(grads), grads[-1].shape[1])
        running = grads[-1]
        grad_parts[:, -1] = running
        for j in range(len(grads) - 2, -1, -1):
            running = running + grads[j]
            grad_parts[:, j] = running
        return grad_parts


def sparse_decode_prefixes(
    active: ActiveLatents, values: Tensor, W_dec: Tensor, sizes: list[int], b_dec: Tensor | None = None
) -> list[Tensor]:
    """The reconstructions from latents [0, m) for every m of ``sizes`` (increasing): each [batch, d_out] (+ b_dec).

    Equal to ``[sparse_decode(active, values, W_dec, b_dec, n_latents=m) for m in sizes]`` at the cost of one:
    the entries are grouped by (sample, segment [m_{j-1}, m_j)), one weighted bag gives every segment's partial
    reconstruction, and the prefixes are their running sums, so each entry is decoded once (and once in the
    backward) instead of once per prefix.
    """
    n = len(sizes)
    segment = torch.bucketize(active.cols, torch.tensor(sizes, device=active.cols.device), right=True)
    key = active.rows * n + segment  # bag (sample, segment); entries past the last prefix get segment n
    order = torch.argsort(key, stable=True)
    if sizes[-1] < active.d_sae:
        order = order[segment[order] < n]
    key, batch = key[order], active.batch * n
    grouped = ActiveLatents(key, active.cols[order], bag_offsets(key, batch), active.pre[order], batch, active.d_sae)
    parts = _SparseDecode.apply(values.to(W_dec.dtype)[order], W_dec, grouped)
    prefixes = _RunningSums.apply(parts.view(active.batch, n, -1))
    return [p if b_dec is None else p + b_dec for p in prefixes]
