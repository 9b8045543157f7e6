"""The TopK family: per-sample TopK (Gao et al., arXiv 2406.04093), batch-wide BatchTopK (Bussmann et al., arXiv
2412.06410) and Matryoshka (Bussmann, Nabeshima et al., arXiv 2503.17547). All select entries structurally, so
they train on the sparse path."""

import itertools
import math
from typing import TYPE_CHECKING, Self

import torch
from torch import Tensor

from dictlab.distributed import all_reduce_, global_kth_largest
from dictlab.distributed.mesh import Mesh
from dictlab.distributed.selection import row_top_entries, row_topk
from dictlab.models.activations.base import Activation, scatter_top, squared_error
from dictlab.models.activations.registry import register_activation
from dictlab.models.sparse_latents import ActiveLatents

if TYPE_CHECKING:
    from dictlab.models.activations.base import PrefixDecoder
    from dictlab.models.config import DictionaryConfig


SAMPLE_ENTRIES = 1 << 17
"""About how many entries of the batch :func:`batch_top_indices` samples to place its threshold."""


def batch_top_indices(pre: Tensor, total: int) -> Tensor:
    """Flat indices of the ``total`` largest entries of ``pre`` [batch, d_sae] (unordered). Exact.

    First from a threshold: a strided sample of about ``SAMPLE_ENTRIES`` entries (the stride coprime with d_sae,
    so every latent is sampled alike) places a value that ``total`` entries reach with a margin of six standard
    deviations of the sample count; when at least ``total`` entries are at or above it, the ``total`` largest of
    them are the answer. Otherwise (a batch unlike its sample), per-row candidates: each row's top c
    (c = 4 × the mean per-row share), ``total`` selected among them, accepted when no row had all c candidates
    selected (then no row can hold a larger entry outside its candidates); otherwise c doubles.
    """
    batch, d_sae = pre.shape
    if total <= 0:
        return torch.zeros(0, dtype=torch.long, device=pre.device)
    found = _top_above_sampled_threshold(pre.reshape(-1), total, d_sae)
    if found is not None:
        return found
    per_row = min(d_sae, 4 * max(1, -(-total // batch)))
    while per_row < d_sae:
        values, cols = row_topk(pre, per_row)
        top = values.reshape(-1).topk(total, sorted=False).indices
        rows = top // per_row
        if int(torch.bincount(rows, minlength=batch).max()) < per_row:
            return rows * d_sae + cols.reshape(-1)[top]
        per_row = min(d_sae, 2 * per_row)
    return pre.reshape(-1).topk(min(total, pre.numel()), sorted=False).indices


def _top_above_sampled_threshold(flat: Tensor, total: int, d_sae: int) -> Tensor | None:
    """The ``total`` largest of ``flat``'s entries at or above a threshold placed from a strided sample, or None
    when fewer than ``total`` reach it."""
    stride = max(1, flat.numel() // SAMPLE_ENTRIES)
    while math.gcd(stride, d_sae) != 1:
        stride += 1
    sample = flat[::stride]
    expected = total * sample.numel() / flat.numel()  # sample entries among the top ``total``
    rank = min(sample.numel(), math.ceil(expected + 6 * math.sqrt(expected) + 16))
    threshold = sample.topk(rank, sorted=False).values.min()
    candidates = (flat >= threshold).nonzero().squeeze(1)
    if candidates.numel() < total:
        return None
    return candidates[flat[candidates].topk(total, sorted=False).indices]


def _k(cfg: "DictionaryConfig") -> int:
    assert cfg.k is not None  # guaranteed by DictionaryConfig validation of activations with uses_k
    return cfg.k


@register_activation
class TopK(Activation):
    """Keep each sample's k largest pre-activations (then ReLU), zero the rest."""

    name = "topk"
    uses_k = True
    has_sparse_path = True

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    @classmethod
    def from_config(cls, cfg: "DictionaryConfig") -> Self:
        return cls(_k(cfg))

    def forward(self, pre: Tensor) -> Tensor:
        rows, cols, _ = row_top_entries(pre.detach(), self.k, self.mesh.tp)  # over every latent shard of the replica
        return torch.zeros_like(pre).index_put((rows, cols), torch.relu(pre[rows, cols]))

    def select(self, pre: Tensor) -> ActiveLatents:
        return ActiveLatents.from_entries(pre, *row_top_entries(pre.detach(), self.k, self.mesh.tp))


def global_batch_top_indices(pre: Tensor, k: int, mesh: Mesh) -> Tensor:
    """Flat indices of this rank's entries among the k·B largest of the *global* batch [B, d_sae].

    The global batch's rows are split over ``mesh.dp`` and its latents over ``mesh.tp``, so every entry lives on
    exactly one rank of ``mesh.all``. For a process alone this is :func:`batch_top_indices` with k·batch.
    Otherwise each rank's own k·B largest entries contain every global winner it holds, so one all-gather of
    those candidates gives the global k·B-th value, and each rank keeps its entries at or above it: the
    selection of one process over the whole batch.
    """
    if mesh.all.size == 1:
        return batch_top_indices(pre, k * pre.shape[0])
    n_global = int(all_reduce_(torch.tensor(pre.shape[0]), group=mesh.dp).item())
    count = k * n_global
    local = batch_top_indices(pre, min(count, pre.numel()))
    values = pre.reshape(-1)[local]
    return local[values >= global_kth_largest(values, count, mesh.all)]


@register_activation
class BatchTopK(Activation):
    """Keep the k·B largest pre-activations of the whole batch in training.

    During training an exponential moving average of the smallest kept positive activation is tracked in the
    buffer ``threshold``; in eval mode the activation is the JumpReLU f = pre·1[pre > threshold], so a sample's
    code no longer depends on the rest of its batch. Before any training step the threshold is unset (−1) and
    eval falls back to batch top-k selection.
    """

    name = "batchtopk"
    uses_k = True
    has_sparse_path = True
    has_inference_threshold = True
    threshold: Tensor
    """Scalar buffer: the eval-mode threshold (−1 while unset)."""

    def __init__(self, k: int, momentum: float, d_sae: int = 0) -> None:
        super().__init__()
        self.k = k
        self.momentum = momentum
        self.d_sae = d_sae
        self.register_buffer("threshold", torch.tensor(-1.0))

    @classmethod
    def from_config(cls, cfg: "DictionaryConfig") -> Self:
        return cls(_k(cfg), cfg.batchtopk_threshold_momentum, cfg.d_sae)

    def forward(self, pre: Tensor) -> Tensor:
        if not self.training and self.threshold >= 0:
            return pre * (pre > self.threshold).to(pre.dtype)
        flat = pre.reshape(-1)
        indices = global_batch_top_indices(pre.detach(), self.k, self.mesh)
        values = flat[indices]
        codes = scatter_top(flat, values, indices).view_as(pre)
        if self.training:
            self._update_threshold(values.detach())
        return codes

    def select(self, pre: Tensor) -> ActiveLatents:
        pre = pre.detach()
        if not self.training and self.threshold >= 0:
            return ActiveLatents.from_mask(pre, pre > self.threshold)
        active = ActiveLatents.from_flat(pre, global_batch_top_indices(pre, self.k, self.mesh))
        if self.training:
            self._update_threshold(active.pre)
        return active

    def inference_threshold(self) -> Tensor | None:
        if self.threshold < 0:
            return None
        size = self.latents.size if self.latents is not None else self.d_sae
        return self.threshold.detach().expand(size).clone()

    @torch.no_grad()
    def _update_threshold(self, kept: Tensor) -> None:
        """θ ← the smallest positive kept value of the global batch (first step), then its running mean; unchanged
        when nothing positive was kept. Written without reading anything back to the host."""
        inf = float("inf")
        local = kept.masked_fill(kept <= 0, inf).amin() if kept.numel() else kept.new_tensor(inf)
        smallest = all_reduce_(local.clone(), "min", self.mesh.all)  # the smallest kept of the global batch
        theta = self.threshold
        averaged = torch.where(theta < 0, smallest, self.momentum * theta + (1 - self.momentum) * smallest)
        theta.copy_(torch.where(torch.isfinite(smallest), averaged, theta))


@register_activation
class Matryoshka(BatchTopK):
    """BatchTopK codes trained with the sum of reconstruction losses of nested latent prefixes.

    Latents [0, m_j) must reconstruct the target on their own for every prefix size m_1 < … < m_J = d_sae, with
    equal weights. Tang et al.'s Eq. 9 can also be read as a sum over several k; dictlab implements the
    nested-prefix reading (the standard one).
    """

    name = "matryoshka"

    def __init__(self, k: int, momentum: float, prefix_sizes: list[int]) -> None:
        super().__init__(k, momentum, prefix_sizes[-1])
        self.prefix_sizes = prefix_sizes

    @classmethod
    def from_config(cls, cfg: "DictionaryConfig") -> Self:
        return cls(_k(cfg), cfg.batchtopk_threshold_momentum, cfg.matryoshka_prefix_sizes)

    @classmethod
    def check_config(cls, cfg: "DictionaryConfig") -> None:
        sizes = cfg.matryoshka_prefix_sizes
        if any(b <= a for a, b in itertools.pairwise(sizes)) or sizes[0] < 1:
            raise ValueError(f"matryoshka_prefixes {cfg.matryoshka_prefixes} give non-increasing sizes {sizes}")
        if cfg.matryoshka_prefixes[-1] != 1.0:
            raise ValueError("the last matryoshka prefix must be 1.0 (the whole dictionary)")

    @property
    def reconstruction_prefixes(self) -> list[int]:
        return self.prefix_sizes[:-1]  # the last prefix is the whole dictionary

    def reconstruction_loss(self, x_out: Tensor, x_hat: Tensor, decode_prefix: "PrefixDecoder") -> Tensor:
        total = squared_error(x_out, x_hat)
        for size in self.reconstruction_prefixes:
            total = total + squared_error(x_out, decode_prefix(size))
        return total
