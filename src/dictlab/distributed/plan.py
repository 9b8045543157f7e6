"""Dictionary parallelism: independent units of work (e.g. the bench's training passes) spread over the processes.

The plan is fixed by the list alone: unit i runs on process i mod W. A unit is trained by one process on its own
(``Mesh.alone()``), from its own data stream and random generator, so where it runs does not change its result.
"""

from collections.abc import Callable
from typing import TypeVar

import torch.distributed as dist

from dictlab.distributed.world import world

T = TypeVar("T")


def my_units(count: int) -> list[int]:
    """Indices of the units of ``count`` that this process runs (all of them in one process)."""
    here = world()
    return list(range(here.rank, count, here.size))


def on_every_process(work: Callable[[], T]) -> list[T]:
    """Run ``work`` here and return every process's result, in rank order (collective).

    If ``work`` raises on any process, every process raises: the failing one its own error, the others
    ``RuntimeError("process R of W failed: ...")``, so none waits forever for the others.
    """
    here = world()
    error: Exception | None = None
    value: T | None = None
    try:
        value = work()
    except Exception as err:
        error = err
    if not here.distributed:
        if error is not None:
            raise error
        return [value]  # type: ignore[list-item]
    gathered: list[tuple[T | None, str | None]] = [(None, None)] * here.size
    dist.all_gather_object(gathered, (value, None if error is None else f"{type(error).__name__}: {error}"))
    if error is not None:
        raise error
    for rank, (_, failure) in enumerate(gathered):
        if failure is not None:
            raise RuntimeError(f"process {rank} of {here.size} failed: {failure}")
    return [v for v, _ in gathered]  # type: ignore[misc]
