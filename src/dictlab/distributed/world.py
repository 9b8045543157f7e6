"""Process-group set-up (backend by device) and rank / world-size queries."""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` in ``[0, size)``."""

    rank: int
    size: int

    @property
    def is_main(self) -> bool:
        """Whether this process writes outputs and prints (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """The current world: the initialised default process group, else a single process."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World(0, 1)


def init_from_environment() -> World:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1): gloo for CPU
    tensors and, on a CUDA build with a GPU, NCCL for CUDA tensors. A no-op in a single process or when the group
    already exists."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    return world()


def shutdown() -> None:
    """Leave the process group (after every wrapper that holds it is gone)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
