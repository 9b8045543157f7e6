"""The two autograd functions latent parallelism needs (torch's own ``distributed.nn`` all-reduce also reduces
in the backward pass, which would scale gradients by the number of shards).

Every shard of a replica computes the same loss from the same full reconstruction, so:

* :func:`sum_partials` — a sum of per-shard partial results (the decoder's x̂ partials): all-reduce forward,
  identity backward (each shard's partial receives the loss gradient of the whole sum);
* :func:`replicated_input` — a replicated tensor that every shard feeds into its own partial product (``b_dec`` on
  the encoder's centring path): identity forward, all-reduce backward (its gradient is the sum over shards).
"""

from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from dictlab.distributed.mesh import Group


class _SumPartials(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, partial: Tensor, group: Group) -> Tensor:
        total = partial.clone()
        dist.all_reduce(total, group=group.handle)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


class _ReplicatedInput(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, value: Tensor, group: Group) -> Tensor:
        ctx.group = group
        return value.view_as(value)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        total = grad.clone()
        dist.all_reduce(total, group=ctx.group.handle)
        return total, None


def sum_partials(partial: Tensor, group: Group) -> Tensor:
    """Σ over ``group`` of ``partial`` (all-reduce forward, identity backward); ``partial`` itself when alone."""
    return partial if group.size == 1 else _SumPartials.apply(partial, group)  # type: ignore[no-any-return]


def replicated_input(value: Tensor, group: Group) -> Tensor:
    """``value`` (identity forward), whose gradient is summed over ``group`` in the backward pass."""
    return value if group.size == 1 else _ReplicatedInput.apply(value, group)  # type: ignore[no-any-return]
