"""Exact top-k selection over latents split across the shards of a replica (no capacity-factor approximation)."""

import torch
from torch import Tensor

from dictlab.distributed.collectives import all_gather_cat, all_reduce_
from dictlab.distributed.mesh import Group

GROUP_WIDTH = 8
"""Columns folded into one group maximum by :func:`row_topk` (at most; fewer for narrow rows)."""


def _group_width(m: int, k: int) -> int:
    """The largest power of two g ≤ GROUP_WIDTH dividing m with m ≥ 8·k·g (enough groups that the first stage
    leaves few candidates), or 1: a plain top-k."""
    g = GROUP_WIDTH if k >= 1 else 1
    while g > 1 and (m % g or m < 8 * k * g):
        g //= 2
    return g


def row_topk(values: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Each row's ``k`` largest entries of ``values`` [batch, m], unordered: (values, indices), both [batch, k].

    The same selection as ``values.topk(k, dim=1, sorted=False)`` (up to which of tied entries is taken), and on
    the CPU faster for wide rows: fold the m columns into m/g groups of g (columns j, j + m/g, j + 2m/g, …, so the
    group maxima are an elementwise max of g contiguous slices), take the k groups with the largest maxima
    (recursively), then the top k of their k·g entries. Exact: an entry outside those k groups is exceeded by
    each of their k maxima. On other devices ``torch.topk`` (already a fast selection there) is used as is.
    """
    batch, m = values.shape
    g = _group_width(m, k)
    if g == 1 or values.device.type != "cpu":
        return values.topk(k, dim=1, sorted=False)
    if values.stride(1) != 1:
        values = values.contiguous()
    width = m // g
    _, groups = row_topk(values.view(batch, g, width).amax(dim=1), k)  # [batch, k] of the [batch, width] maxima
    cols = (groups[:, :, None] + torch.arange(0, m, width, device=values.device)).view(batch, k * g)
    top, picked = values.gather(1, cols).topk(k, dim=1, sorted=False)
    return top, cols.gather(1, picked)


def row_top_entries(values: Tensor, k: int, group: Group) -> tuple[Tensor, Tensor, Tensor]:
    """This rank's entries among each row's ``k`` largest of the row concatenated over ``group``.

    ``values`` [batch, m] is this rank's block of columns (m may differ between ranks, even be 0). The global
    k-th largest lies in the union of every rank's own k largest, so each rank sends only those (padded to k with
    −inf), every rank takes the same top-k of the gathered [batch, k·shards] candidates, and keeps its own winners.
    Each row gets exactly min(k, Σ m) entries over the group.

    Returns (rows [n], cols [n], top [n]): int64 rows, nondecreasing, and cols into this rank's block, and the
    entries' values.
    """
    batch, m = values.shape
    local_values, local_cols = row_topk(values, min(k, m))
    if group.size == 1:
        rows = torch.arange(batch, device=values.device).repeat_interleave(local_cols.shape[1])
        return rows, local_cols.reshape(-1), local_values.reshape(-1)
    candidates = values.new_full((batch, k), float("-inf"))
    cols = local_cols.new_zeros((batch, k))
    candidates[:, : local_values.shape[1]] = local_values
    cols[:, : local_cols.shape[1]] = local_cols
    total = int(all_reduce_(torch.tensor(m), group=group).item())
    top, winners = all_gather_cat(candidates, group, dim=1).topk(min(k, total), dim=1, sorted=False)
    mine = winners // k == group.rank
    rows = torch.arange(batch, device=values.device)[:, None].expand_as(winners)[mine]
    return rows, cols.gather(1, winners % k)[mine], top[mine]
