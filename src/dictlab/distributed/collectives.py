"""The handful of collectives dictlab uses; each is the identity for a process alone.

Every function takes an optional :class:`~dictlab.distributed.mesh.Group` (default: every process of the run).
"""

from collections.abc import Iterable
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor

from dictlab.distributed.mesh import Group

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


def _group(group: Group | None) -> Group:
    return Group.everyone() if group is None else group


def all_reduce_(tensor: Tensor, op: Literal["sum", "max", "min"] = "sum", group: Group | None = None) -> Tensor:
    """Reduce ``tensor`` over ``group`` in place (no autograd) and return it."""
    group = _group(group)
    if group.size > 1:
        dist.all_reduce(tensor, op=_OPS[op], group=group.handle)
    return tensor


def any_rank(flag: bool, group: Group | None = None) -> bool:
    """Whether ``flag`` holds on at least one rank of ``group`` (so every rank takes the same branch)."""
    if _group(group).size == 1:
        return flag
    return bool(all_reduce_(torch.tensor([int(flag)]), "max", group).item())


def broadcast_object(value: Any, source: int = 0) -> Any:
    """``value`` of rank ``source`` on every rank."""
    if Group.everyone().size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=source)
    return box[0]


def local_share(rows: Tensor, group: Group | None = None) -> Tensor:
    """This rank's contiguous share of a global batch ``rows`` [n, ...] within ``group`` (sizes differ by at most
    one row)."""
    group = _group(group)
    if group.size == 1:
        return rows
    return torch.tensor_split(rows, group.size)[group.rank]


def sum_gradients_(parameters: Iterable[torch.nn.Parameter], group: Group | None = None) -> None:
    """Sum every parameter's gradient over ``group``, in place, one all-reduce per parameter (a parameter
    without a gradient gets a zero one, so every rank reduces the same tensors). In place, so the reduction needs
    no second copy of the gradients."""
    group = _group(group)
    if group.size == 1:
        return
    for param in parameters:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
        elif not param.grad.is_contiguous():  # e.g. the sparse path's transposed W_enc gradient
            param.grad = param.grad.contiguous()
        dist.all_reduce(param.grad, group=group.handle)


def all_gather_cat(tensor: Tensor, group: Group, dim: int = 0) -> Tensor:
    """Every rank's ``tensor`` (all the same shape) concatenated along ``dim`` in rank order (no autograd)."""
    if group.size == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(group.size)]
    dist.all_gather(parts, tensor.contiguous(), group=group.handle)
    return torch.cat(parts, dim=dim)


def global_kth_largest(candidates: Tensor, count: int, group: Group | None = None) -> Tensor:
    """The ``count``-th largest value over every rank's ``candidates`` (each rank's own ``count`` largest values,
    or all of them when it has fewer): a 0-dim tensor, the same on every rank."""
    padded = torch.full((count,), float("-inf"), dtype=candidates.dtype, device=candidates.device)
    padded[: candidates.numel()] = candidates
    return all_gather_cat(padded, _group(group)).topk(count, sorted=False).values.min()
