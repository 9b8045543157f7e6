"""The handful of collectives dictlab uses; each is the identity in a single process."""

from collections.abc import Iterable
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor

from dictlab.distributed.world import world

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


def all_reduce_(tensor: Tensor, op: Literal["sum", "max", "min"] = "sum") -> Tensor:
    """Reduce ``tensor`` over every rank in place (no autograd) and return it."""
    if world().distributed:
        dist.all_reduce(tensor, op=_OPS[op])
    return tensor


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` holds on at least one rank (so every rank takes the same branch)."""
    if not world().distributed:
        return flag
    return bool(all_reduce_(torch.tensor([int(flag)]), "max").item())


def broadcast_object(value: Any, source: int = 0) -> Any:
    """``value`` of rank ``source`` on every rank."""
    if not world().distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=source)
    return box[0]


def local_share(rows: Tensor) -> Tensor:
    """This rank's contiguous share of a global batch ``rows`` [n, ...] (sizes differ by at most one row)."""
    here = world()
    if not here.distributed:
        return rows
    return torch.tensor_split(rows, here.size)[here.rank]


def sum_gradients_(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Sum every parameter's gradient over the ranks in one flat all-reduce (parameters without a gradient
    count as zero, so every rank sends the same layout)."""
    if not world().distributed:
        return
    params = list(parameters)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for param, grad in zip(params, grads, strict=True):
        n = grad.numel()
        param.grad = flat[offset : offset + n].view_as(grad).clone()
        offset += n


def global_kth_largest(candidates: Tensor, count: int) -> Tensor:
    """The ``count``-th largest value over every rank's ``candidates`` (each rank's own ``count`` largest values,
    or all of them when it has fewer): a 0-dim tensor, the same on every rank."""
    padded = torch.full((count,), float("-inf"), dtype=candidates.dtype, device=candidates.device)
    padded[: candidates.numel()] = candidates
    if world().distributed:
        gathered = [torch.empty_like(padded) for _ in range(world().size)]
        dist.all_gather(gathered, padded)
        padded = torch.cat(gathered)
    return padded.topk(count, sorted=False).values.min()
