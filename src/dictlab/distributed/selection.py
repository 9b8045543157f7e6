"""Exact top-k selection over latents split across the shards of a replica (no capacity-factor approximation)."""

import torch
from torch import Tensor

from dictlab.distributed.collectives import all_gather_cat, all_reduce_
from dictlab.distributed.mesh import Group


def row_top_entries(values: Tensor, k: int, group: Group) -> tuple[Tensor, Tensor]:
    """This rank's entries among each row's ``k`` largest of the row concatenated over ``group``.

    ``values`` [batch, m] is this rank's block of columns (m may differ between ranks, even be 0). The global
    k-th largest lies in the union of every rank's own k largest, so each rank sends only those (padded to k with
    −inf), every rank takes the same top-k of the gathered [batch, k·shards] candidates, and keeps its own winners.
    Each row gets exactly min(k, Σ m) entries over the group.

    Returns (rows [n], cols [n]) int64, rows nondecreasing, cols into this rank's block.
    """
    batch, m = values.shape
    local = values.topk(min(k, m), dim=1, sorted=False)
    if group.size == 1:
        rows = torch.arange(batch, device=values.device).repeat_interleave(local.indices.shape[1])
        return rows, local.indices.reshape(-1)
    candidates = values.new_full((batch, k), float("-inf"))
    cols = local.indices.new_zeros((batch, k))
    candidates[:, : local.values.shape[1]] = local.values
    cols[:, : local.indices.shape[1]] = local.indices
    total = int(all_reduce_(torch.tensor(m), group=group).item())
    winners = all_gather_cat(candidates, group, dim=1).topk(min(k, total), dim=1, sorted=False).indices
    mine = winners // k == group.rank
    rows = torch.arange(batch, device=values.device)[:, None].expand_as(winners)[mine]
    return rows, cols.gather(1, winners % k)[mine]
