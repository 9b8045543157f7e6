"""torch.distributed for dictlab: the one place that knows whether a run is distributed.

A run launched by ``torchrun`` joins the process group at start (:func:`init_from_environment`); everything else
asks :func:`world` for its rank and world size and calls the collectives here, which are no-ops in a single
process (so single-process runs pay nothing and are bit-for-bit unchanged).
"""

from dictlab.distributed.collectives import (
    all_reduce_,
    any_rank,
    broadcast_object,
    global_kth_largest,
    local_share,
    sum_gradients_,
)
from dictlab.distributed.world import World, init_from_environment, shutdown, world

__all__ = [
    "World",
    "all_reduce_",
    "any_rank",
    "broadcast_object",
    "global_kth_largest",
    "init_from_environment",
    "local_share",
    "shutdown",
    "sum_gradients_",
    "world",
]
