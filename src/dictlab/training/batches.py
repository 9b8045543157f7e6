"""Deterministic shuffled mini-batches over an in-memory table of rows.

The batch of a step is a pure function of (seed, step), so a resumed run sees exactly the batches an
uninterrupted one would, with no iterator state to checkpoint.
"""

from typing import Protocol

import torch
from torch import Tensor


class BatchSource(Protocol):
    """What the trainer draws from: in-memory :class:`ShuffledBatches` or a streamed activation store.

    A source may also have a ``close()`` method, which the trainer calls when a fit ends or fails (a store's
    batches end their prefetch thread there).
    """

    batch_size: int

    @property
    def n_samples(self) -> int: ...

    def batch(self, step: int) -> Tensor: ...

    def sample(self, n: int, generator: torch.Generator) -> Tensor: ...


class ShuffledBatches:
    """Epoch-wise random permutations of ``rows`` ([n_rows, width]); incomplete final batches are dropped."""

    def __init__(self, rows: Tensor, batch_size: int, seed: int) -> None:
        if rows.dim() != 2:
            raise ValueError(f"training rows must be a 2-D [n_rows, width] tensor, got shape {list(rows.shape)}")
        if rows.shape[0] < batch_size:
            raise ValueError(f"batch_size {batch_size} exceeds the {rows.shape[0]} training rows")
        if not torch.isfinite(rows).all():
            raise ValueError("training data contains NaN or Inf")
        self.rows = rows
        self.batch_size = batch_size
        self.seed = seed
        self._epoch = -1
        self._order = torch.empty(0, dtype=torch.long)

    @property
    def n_samples(self) -> int:
        return self.rows.shape[0]

    @property
    def steps_per_epoch(self) -> int:
        return self.n_samples // self.batch_size

    def _permutation(self, epoch: int) -> Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.randperm(self.n_samples, generator=generator)
            self._epoch = epoch
        return self._order

    def batch(self, step: int) -> Tensor:
        """Rows of training step ``step``: [batch_size, width]."""
        epoch, position = divmod(step, self.steps_per_epoch)
        order = self._permutation(epoch)
        return self.rows[order[position * self.batch_size : (position + 1) * self.batch_size]]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` rows drawn uniformly without replacement (all rows if fewer): [min(n, n_rows), width]."""
        idx = torch.randperm(self.n_samples, generator=generator)[:n]
        return self.rows[idx]


def to_device(rows: Tensor, device: torch.device) -> Tensor:
    """``rows`` on ``device``. Host rows bound for a CUDA device are copied into pinned memory first, so the copy
    to the GPU is queued without the host waiting for it (the values are the same)."""
    if device.type == "cuda" and rows.device.type == "cpu" and not rows.is_pinned():
        rows = rows.pin_memory()
    return rows.to(device, non_blocking=True)
