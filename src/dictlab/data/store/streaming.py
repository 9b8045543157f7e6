"""Shuffled mini-batches streamed from an activation store, with a held-out split, in bounded memory.

Rows are grouped into fixed-size chunks of consecutive rows (a chunk may span two shards). A deterministic,
seeded hash assigns each chunk to the training or the held-out split. Every epoch permutes the training chunks,
loads ``buffer_chunks`` of them at a time into a buffer, shuffles the buffer's rows and serves batches from it.
The batch of a step is a pure function of (seed, step), as for in-memory data, so a resumed training run sees
exactly the batches of an uninterrupted one. While one buffer serves its batches, a background thread reads and
shuffles the next (``prefetch``), so training does not wait on the disk. Memory: two buffers (``buffer_rows ×
width`` float32 each; one without prefetching) plus the model.
"""

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from dictlab.data.store.prefetch import Prefetcher
from dictlab.data.store.reader import ActivationStore


def split_chunks(n_chunks: int, holdout_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training chunk ids, held-out chunk ids): a seeded random ``holdout_fraction`` of chunks, at least one when
    the fraction is positive, never all of them."""
    if not 0 <= holdout_fraction < 1:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
    if n_chunks == 0:
        raise ValueError("the store holds fewer rows than one chunk: lower chunk_rows (--chunk-rows)")
    if holdout_fraction > 0 and n_chunks < 2:
        raise ValueError(
            "the store's rows make a single chunk, so nothing can be held out for evaluation: lower chunk_rows "
            "(--chunk-rows) or set holdout_fraction (--holdout-fraction) to 0"
        )
    n_held = min(n_chunks - 1, math.ceil(holdout_fraction * n_chunks)) if holdout_fraction > 0 else 0
    order = np.random.default_rng(seed).permutation(n_chunks)
    held = sorted(order[:n_held].tolist())
    return sorted(order[n_held:].tolist()), held


class StoreBatches:
    """Batch source over one module of an :class:`ActivationStore` (same interface as ``ShuffledBatches``).

    Args:
        store: the opened store (one module).
        batch_size: rows per batch.
        seed: seed of the epoch permutations and buffer shuffles.
        buffer_rows: rows held in memory at once (rounded to whole chunks; larger = better mixing).
        chunk_rows: rows per chunk, the unit of the held-out split and of the first shuffle.
        holdout_fraction: share of chunks kept out of training (read them with :meth:`holdout`).
        scale: every row is multiplied by this (activation normalisation; 1 = raw).
        split_seed: seed of the train/held-out assignment (fixed per store so every run holds out the same rows).
        max_norm_ratio: drop rows whose norm exceeds this multiple of the store's RMS row norm from every batch,
            pool and held-out block (None: keep all). Some LMs write a few "massive activations" (norms ~100× the
            median on attention-sink tokens); one such row in a batch dominates the squared error and its gradient.
        lane: (index, count): serve only every count-th training chunk from index on, with its own seed — one lane
            of a :class:`~dictlab.data.store.lanes.LaneBatches` stream. (0, 1), the default, is the whole stream.
            :meth:`sample` and the held-out split always cover every training / held-out chunk.
        prefetch: read and shuffle the next buffer in a background thread while this one serves its batches (the
            same batches either way; :meth:`close` ends the thread).
    """

    def __init__(
        self,
        store: ActivationStore,
        batch_size: int,
        seed: int = 0,
        buffer_rows: int = 262_144,
        chunk_rows: int = 4096,
        holdout_fraction: float = 0.05,
        scale: float = 1.0,
        split_seed: int = 0,
        max_norm_ratio: float | None = None,
        lane: tuple[int, int] = (0, 1),
        prefetch: bool = True,
    ) -> None:
        if batch_size <= 0 or chunk_rows <= 0 or buffer_rows <= 0:
            raise ValueError("batch_size, chunk_rows and buffer_rows must be positive")
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive finite number, got {scale}")
        if max_norm_ratio is not None and not (math.isfinite(max_norm_ratio) and max_norm_ratio > 0):
            raise ValueError(f"max_norm_ratio must be a positive finite number or None, got {max_norm_ratio}")
        index, count = lane
        if not 0 <= index < count:
            raise ValueError(f"lane {index} of {count} does not exist")
        self.store = store
        self.batch_size = batch_size
        self.seed = seed if count == 1 else seed * 1_000_033 + 7_919 * (index + 1)
        self.chunk_rows = chunk_rows
        self.scale = scale
        self.max_norm = None if max_norm_ratio is None else max_norm_ratio * store.entry.stats.rms_norm * scale
        self.all_train_chunks, self.held_chunks = split_chunks(store.n_rows // chunk_rows, holdout_fraction, split_seed)
        self.train_chunks = self.all_train_chunks[index::count]
        wanted = max(1, math.ceil(max(buffer_rows, batch_size) / chunk_rows))
        self.buffer_chunks = min(wanted, max(1, len(self.train_chunks)))
        if self.n_samples < batch_size:
            raise ValueError(
                f"batch_size {batch_size} exceeds the {self.n_samples:,} training rows of {store.root} "
                f"({len(self.train_chunks)} whole chunks of {chunk_rows} rows); lower --batch-size or --chunk-rows"
            )
        groups = [
            min(self.buffer_chunks, len(self.train_chunks) - g)
            for g in range(0, len(self.train_chunks), self.buffer_chunks)
        ]
        self._batches_per_group = [n * chunk_rows // batch_size for n in groups]
        self._group_starts = np.cumsum([0, *self._batches_per_group]).tolist()
        self._groups = Prefetcher(self._read_group, self._following, prefetch)
        self._key: tuple[int, int] | None = None
        self._buffer = torch.empty(0)

    @property
    def n_samples(self) -> int:
        """Training rows (whole chunks only; the store's last partial chunk is not used)."""
        return len(self.train_chunks) * self.chunk_rows

    @property
    def steps_per_epoch(self) -> int:
        return int(self._group_starts[-1])

    @property
    def buffer_rows(self) -> int:
        return self.buffer_chunks * self.chunk_rows

    def _read_chunks(self, chunk_ids: list[int]) -> Tensor:
        blocks = [self.store.read(c * self.chunk_rows, (c + 1) * self.chunk_rows) for c in chunk_ids]
        rows = torch.from_numpy(np.concatenate(blocks)).float()
        return rows.mul_(self.scale) if self.scale != 1.0 else rows

    def _typical(self, rows: Tensor) -> Tensor:
        """``rows`` without those over ``max_norm`` (all of them when no limit is set)."""
        if self.max_norm is None:
            return rows
        return rows[rows.norm(dim=-1) <= self.max_norm]

    def _read_group(self, key: tuple[int, int]) -> Tensor:
        """The shuffled rows of the buffer ``key`` = (epoch, group): [≤ buffer_rows, width]. A pure function of the
        key (it runs in the prefetch thread)."""
        epoch, group = key
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train_chunks), generator=generator).tolist()
        ids = [self.train_chunks[i] for i in order[group * self.buffer_chunks : (group + 1) * self.buffer_chunks]]
        rows = self._read_chunks(ids)
        shuffle = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 7919 + group)
        return rows[torch.randperm(rows.shape[0], generator=shuffle)]

    def _locate(self, step: int) -> tuple[tuple[int, int], int]:
        """((epoch, group) of the buffer that serves step ``step``, the step's batch index in that buffer)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        group = int(np.searchsorted(self._group_starts, position, side="right") - 1)
        return (epoch, group), position - self._group_starts[group]

    def _following(self, key: tuple[int, int]) -> tuple[int, int]:
        """The (epoch, group) whose batches come after those of ``key`` (a group too small for a batch has none)."""
        epoch, group = key
        return self._locate(epoch * self.steps_per_epoch + self._group_starts[group + 1])[0]

    def _load(self, key: tuple[int, int]) -> Tensor:
        if self._key != key:
            self._buffer = torch.empty(0)  # free the old buffer before taking the new one
            self._buffer = self._groups.get(key)
            self._key = key
        return self._buffer

    def close(self) -> None:
        """End the prefetch thread (a later :meth:`batch` starts it again)."""
        self._groups.close()

    def batch(self, step: int) -> Tensor:
        """Rows of training step ``step``: [batch_size, width] float32 (fewer when outlier rows are dropped)."""
        key, local = self._locate(step)
        buffer = self._load(key)
        return self._typical(buffer[local * self.batch_size : (local + 1) * self.batch_size])

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` training rows from randomly chosen chunks (all rows of those chunks if fewer): [≤ n, width]."""
        chunks = self.all_train_chunks
        n_chunks = min(len(chunks), math.ceil(n / self.chunk_rows))
        picks = torch.randperm(len(chunks), generator=generator)[:n_chunks].tolist()
        rows = self._typical(self._read_chunks([chunks[i] for i in picks]))
        return rows[torch.randperm(rows.shape[0], generator=generator)[:n]]

    def holdout(self, max_rows: int | None = None) -> Tensor:
        """Held-out rows (scaled like training batches): [≤ max_rows, width] float32."""
        blocks = list(self.holdout_chunks(max_rows))
        return torch.cat(blocks) if blocks else torch.empty(0, self.store.width)

    def holdout_chunks(self, max_rows: int | None = None) -> Iterator[Tensor]:
        """The held-out rows one chunk at a time ([≤ chunk_rows, width] each): evaluation in bounded memory."""
        remaining = self.n_holdout if max_rows is None else min(max_rows, self.n_holdout)
        for chunk in self.held_chunks:
            if remaining <= 0:
                return
            rows = self._typical(self._read_chunks([chunk]))[:remaining]
            remaining -= rows.shape[0]
            yield rows

    @property
    def n_holdout(self) -> int:
        """Held-out rows (whole chunks)."""
        return len(self.held_chunks) * self.chunk_rows
