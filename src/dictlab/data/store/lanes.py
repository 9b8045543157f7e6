"""The global batch of a step as ``lanes`` independent streams, so that every process reads only its own chunks.

Lane i of L streams the training chunks i, i + L, i + 2L, ... with its own seed and serves B / L rows per step; the
global batch of step s is the concatenation of every lane's rows of step s, a pure function of (seed, step, L)
whatever the number of processes. A run over W processes (W dividing L) gives each process L / W consecutive lanes:
it reads only their chunks and holds only their buffers (``buffer_rows`` / W rows). One lane (L = 1) is exactly the
stream of :class:`~dictlab.data.store.streaming.StoreBatches`. L is fixed when a run is created; changing it
changes the batches, so it is part of a run's identity.
"""

from collections.abc import Iterator

import torch
from torch import Tensor

from dictlab.data.store.reader import ActivationStore
from dictlab.data.store.streaming import StoreBatches
from dictlab.distributed.mesh import Group


class LaneBatches:
    """This process's lanes of a laned stream over one module of a store (the trainer's batch source).

    ``lanes`` is the number of lanes L (a multiple of the number of processes, and ``batch_size`` a multiple of
    L); the other arguments are those of :class:`StoreBatches`, with ``batch_size`` and ``buffer_rows`` counted
    over all lanes (with ``prefetch``, every lane reads ahead in its own thread). ``replicas`` are the processes
    that split the rows (default: every process of the run; under latent parallelism the data-parallel group,
    whose members' latent shards share their rows).
    """

    serves_local_rows = True
    """:meth:`batch` returns this process's rows of the global batch, not the whole batch."""

    def __init__(
        self,
        store: ActivationStore,
        batch_size: int,
        lanes: int = 1,
        seed: int = 0,
        buffer_rows: int = 262_144,
        chunk_rows: int = 4096,
        holdout_fraction: float = 0.05,
        scale: float = 1.0,
        max_norm_ratio: float | None = None,
        replicas: Group | None = None,
        prefetch: bool = True,
    ) -> None:
        here = replicas if replicas is not None else Group.everyone()
        if lanes < 1 or lanes % here.size:
            raise ValueError(
                f"--lanes {lanes} cannot be split over {here.size} data-parallel replicas: use a multiple of "
                f"{here.size} (the lane count is fixed when a run is created)"
            )
        if batch_size % lanes:
            raise ValueError(f"--batch-size {batch_size} is not a multiple of --lanes {lanes}")
        per_process = lanes // here.size
        self.batch_size = batch_size
        self.lanes = lanes
        self.streams = [
            StoreBatches(
                store,
                batch_size // lanes,
                seed,
                max(1, buffer_rows // lanes),
                chunk_rows,
                holdout_fraction,
                scale,
                max_norm_ratio=max_norm_ratio,
                lane=(lane, lanes),
                prefetch=prefetch,
            )
            for lane in range(here.rank * per_process, (here.rank + 1) * per_process)
        ]
        first = self.streams[0]
        self.store = store
        self.max_norm = first.max_norm

    @property
    def n_samples(self) -> int:
        """Training rows of all lanes together (whole chunks)."""
        return len(self.streams[0].all_train_chunks) * self.streams[0].chunk_rows

    @property
    def buffer_rows(self) -> int:
        """Rows this process holds in its lanes' buffers."""
        return sum(stream.buffer_rows for stream in self.streams)

    def batch(self, step: int) -> Tensor:
        """This process's rows of step ``step``'s global batch: [≤ batch_size·(L/W)/L, width]."""
        parts = [stream.batch(step) for stream in self.streams]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def close(self) -> None:
        """End the lanes' prefetch threads (a later :meth:`batch` starts them again)."""
        for stream in self.streams:
            stream.close()

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` rows from all training chunks (the same rows in every process for the same generator state)."""
        return self.streams[0].sample(n, generator)

    def holdout_chunks(self, max_rows: int | None = None) -> Iterator[Tensor]:
        return self.streams[0].holdout_chunks(max_rows)

    @property
    def n_holdout(self) -> int:
        return self.streams[0].n_holdout
