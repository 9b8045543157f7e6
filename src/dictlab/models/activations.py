"""Plug-in activations σ for the sparse dictionary.

Every activation satisfies σ(z)_i ∈ {0, z_i} (Tang et al., Eq. 10). An activation owns the loss terms that belong
to it: an optional sparsity penalty (ReLU's decoder-norm-weighted L1, JumpReLU's L0) and, for Matryoshka, the
reconstruction loss over nested latent prefixes. The trainer knows nothing about individual activations.
"""

from collections.abc import Callable
from typing import ClassVar

import torch
from torch import Tensor, nn

from dictlab.models.config import DictionaryConfig
from dictlab.models.sparse_latents import ActiveLatents

PrefixDecoder = Callable[[int], Tensor]
"""``decode_prefix(m) -> x̂`` [batch, d_out]: the reconstruction from latents [0, m) only (plus b_dec)."""


def squared_error(x_out: Tensor, x_hat: Tensor) -> Tensor:
    """E‖x_r − x̂_r‖²: squared error summed over dimensions, averaged over the batch (the paper's L_SDL)."""
    return (x_out - x_hat).pow(2).sum(dim=-1).mean()


class Activation(nn.Module):
    """Base class: ``forward(pre) -> codes`` with the same shape [batch, d_sae]."""

    name: ClassVar[str]

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor | None:
        """Unscaled sparsity penalty (mean over the batch), or None when sparsity is structural (TopK)."""
        return None

    def select(self, pre: Tensor) -> ActiveLatents | None:
        """The entries this activation keeps, as index lists (the sparse path), or None when it has no
        structural sparsity (ReLU, JumpReLU: their codes are dense until training makes them sparse)."""
        return None

    def reconstruction_loss(self, x_out: Tensor, x_hat: Tensor, decode_prefix: PrefixDecoder) -> Tensor:
        """Training reconstruction loss given the full reconstruction ``x_hat``; default: its squared error."""
        return squared_error(x_out, x_hat)


class ReLU(Activation):
    """f = ReLU(pre), trained with λ Σ_i f_i ‖W_dec[i]‖ (scale-invariant L1; plain L1 for unit-norm rows)."""

    name = "relu"

    def forward(self, pre: Tensor) -> Tensor:
        return torch.relu(pre)

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor:
        # E_b Σ_i f_bi‖W_dec[i]‖ as (column sums)·norms: one pass over [batch, d_sae] instead of three
        return codes.sum(dim=0) @ decoder_norms / codes.shape[0]


def _rectangle(u: Tensor) -> Tensor:
    return (u.abs() < 0.5).to(u.dtype)


class _JumpReLUFunction(torch.autograd.Function):
    """pre·H(pre − θ) with the straight-through estimator of Rajamanoharan et al. (arXiv 2407.14435)."""

    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[Tensor, Tensor, None]:  # type: ignore[override]
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_pre = grad_out * (pre > threshold).to(pre.dtype)
        # ∂/∂θ [z·H(z−θ)] ≈ −(θ/ε)·K((z−θ)/ε)
        grad_threshold = -(threshold / eps) * _rectangle((pre - threshold) / eps) * grad_out
        return grad_pre, grad_threshold.sum(dim=0), None


class _StepFunction(torch.autograd.Function):
    """H(pre − θ) whose θ-gradient is −(1/ε)·K((pre − θ)/ε); no gradient to pre."""

    @staticmethod
    def forward(ctx, pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor) -> tuple[None, Tensor, None]:  # type: ignore[override]
        pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_threshold = -(1.0 / eps) * _rectangle((pre - threshold) / eps) * grad_out
        return None, grad_threshold.sum(dim=0), None


class JumpReLU(Activation):
    """f_i = pre_i·H(pre_i − θ_i) with a learned per-latent threshold θ = exp(log_threshold); L0 penalty."""

    name = "jumprelu"

    def __init__(self, d_sae: int, init_threshold: float, bandwidth: float) -> None:
        super().__init__()
        self.bandwidth = bandwidth
        self.log_threshold = nn.Parameter(torch.full((d_sae,), float(torch.log(torch.tensor(init_threshold)))))

    @property
    def threshold(self) -> Tensor:
        """θ: [d_sae], always positive."""
        return self.log_threshold.exp()

    def forward(self, pre: Tensor) -> Tensor:
        return _JumpReLUFunction.apply(pre, self.threshold, self.bandwidth)

    def sparsity_penalty(self, pre: Tensor, codes: Tensor, decoder_norms: Tensor) -> Tensor:
        return _StepFunction.apply(pre, self.threshold, self.bandwidth).sum(dim=-1).mean()


def _scatter_top(pre: Tensor, values: Tensor, indices: Tensor) -> Tensor:
    return torch.zeros_like(pre).scatter_(-1, indices, torch.relu(values))


def batch_top_indices(pre: Tensor, total: int) -> Tensor:
    """Flat indices of the ``total`` largest entries of ``pre`` [batch, d_sae] (unordered).

    Exact, and much faster than one top-k over all batch·d_sae entries: take each row's top c candidates
    (c = 4 × the mean per-row share), select ``total`` among them, and accept when no row had all c candidates
    selected (then no row can hold a larger entry outside its candidates); otherwise double c.
    """
    batch, d_sae = pre.shape
    per_row = min(d_sae, 4 * max(1, -(-total // batch)))
    while per_row < d_sae:
        values, cols = pre.topk(per_row, dim=-1, sorted=False)
        top = values.reshape(-1).topk(total, sorted=False).indices
        rows = top // per_row
        if int(torch.bincount(rows, minlength=batch).max()) < per_row:
            return rows * d_sae + cols.reshape(-1)[top]
        per_row = min(d_sae, 2 * per_row)
    return pre.reshape(-1).topk(min(total, pre.numel()), sorted=False).indices


class TopK(Activation):
    """Keep each sample's k largest pre-activations (then ReLU), zero the rest (Gao et al., arXiv 2406.04093)."""

    name = "topk"

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, pre: Tensor) -> Tensor:
        values, indices = pre.topk(self.k, dim=-1, sorted=False)
        return _scatter_top(pre, values, indices)

    def select(self, pre: Tensor) -> ActiveLatents:
        values, indices = pre.detach().topk(self.k, dim=-1, sorted=False)
        return ActiveLatents.from_row_topk(values, indices, pre.shape[-1])


class BatchTopK(Activation):
    """Keep the k·B largest pre-activations of the whole batch in training (Bussmann et al., arXiv 2412.06410).

    During training an exponential moving average of the smallest kept positive activation is tracked in the
    buffer ``threshold``; in eval mode the activation is the JumpReLU f = pre·1[pre > threshold], so a sample's
    code no longer depends on the rest of its batch. Before any training step the threshold is unset (−1) and
    eval falls back to batch top-k selection.
    """

    name = "batchtopk"

    def __init__(self, k: int, momentum: float) -> None:
        super().__init__()
        self.k = k
        self.momentum = momentum
        self.register_buffer("threshold", torch.tensor(-1.0))

    def forward(self, pre: Tensor) -> Tensor:
        if not self.training and self.threshold >= 0:
            return pre * (pre > self.threshold).to(pre.dtype)
        flat = pre.reshape(-1)
        indices = batch_top_indices(pre.detach(), self.k * pre.shape[0])
        values = flat[indices]
        codes = _scatter_top(flat, values, indices).view_as(pre)
        if self.training:
            self._update_threshold(values.detach())
        return codes

    def select(self, pre: Tensor) -> ActiveLatents:
        pre = pre.detach()
        if not self.training and self.threshold >= 0:
            return ActiveLatents.from_mask(pre, pre > self.threshold)
        active = ActiveLatents.from_flat(pre, batch_top_indices(pre, self.k * pre.shape[0]))
        if self.training:
            self._update_threshold(active.pre)
        return active

    @torch.no_grad()
    def _update_threshold(self, kept: Tensor) -> None:
        positive = kept[kept > 0]
        if positive.numel() == 0:
            return
        smallest = positive.min()
        if self.threshold < 0:
            self.threshold.copy_(smallest)
        else:
            self.threshold.mul_(self.momentum).add_((1 - self.momentum) * smallest)


class Matryoshka(BatchTopK):
    """BatchTopK codes trained with the sum of reconstruction losses of nested latent prefixes.

    After Bussmann, Nabeshima et al. (arXiv 2503.17547): latents [0, m_j) must reconstruct the target on their own
    for every prefix size m_1 < … < m_J = d_sae, with equal weights. The paper's Eq. 9 can also be read as a sum
    over several k; dictlab implements the nested-prefix reading (the standard one).
    """

    name = "matryoshka"

    def __init__(self, k: int, momentum: float, prefix_sizes: list[int]) -> None:
        super().__init__(k, momentum)
        self.prefix_sizes = prefix_sizes

    def reconstruction_loss(self, x_out: Tensor, x_hat: Tensor, decode_prefix: PrefixDecoder) -> Tensor:
        total = squared_error(x_out, x_hat)  # the last prefix is the whole dictionary
        for size in self.prefix_sizes[:-1]:
            total = total + squared_error(x_out, decode_prefix(size))
        return total


def build_activation(cfg: DictionaryConfig) -> Activation:
    """Instantiate the activation named in ``cfg``."""
    builders: dict[str, Callable[[], Activation]] = {
        "relu": ReLU,
        "jumprelu": lambda: JumpReLU(cfg.d_sae, cfg.jumprelu_init_threshold, cfg.jumprelu_bandwidth),
        "topk": lambda: TopK(_k(cfg)),
        "batchtopk": lambda: BatchTopK(_k(cfg), cfg.batchtopk_threshold_momentum),
        "matryoshka": lambda: Matryoshka(_k(cfg), cfg.batchtopk_threshold_momentum, cfg.matryoshka_prefix_sizes),
    }
    if cfg.activation not in builders:
        raise ValueError(f"unknown activation {cfg.activation!r}; choose one of {sorted(builders)}")
    return builders[cfg.activation]()


def _k(cfg: DictionaryConfig) -> int:
    assert cfg.k is not None  # guaranteed by DictionaryConfig validation
    return cfg.k
