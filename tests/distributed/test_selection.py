"""row_topk: the CPU's grouped exact top-k against torch.topk."""

import pytest
import torch

from dictlab.distributed.selection import _group_width, row_topk


def _same_selection(values: torch.Tensor, k: int) -> None:
    top, cols = row_topk(values, k)
    expected = values.topk(k, dim=1, sorted=False)
    assert cols.shape == top.shape == (values.shape[0], k)
    assert torch.equal(values.gather(1, cols), top)  # the values returned are those of the columns returned
    assert torch.equal(top.sort(dim=1).values, expected.values.sort(dim=1).values)
    assert all(len(set(row.tolist())) == k for row in cols)  # k distinct columns per row


@pytest.mark.parametrize(("m", "k"), [(3072, 32), (16384, 32), (3072, 128), (4000, 7), (1000, 100), (96, 32)])
def test_row_topk_selects_exactly_the_k_largest(m: int, k: int) -> None:
    values = torch.randn(64, m, generator=torch.Generator().manual_seed(m + k))
    _, cols = row_topk(values, k)
    assert torch.equal(cols.sort(dim=1).values, values.topk(k, dim=1).indices.sort(dim=1).values)
    _same_selection(values, k)


def test_wide_rows_take_the_grouped_path() -> None:
    assert _group_width(3072, 32) == 8 and _group_width(16384, 32) == 8 and _group_width(65536, 128) == 8
    assert _group_width(3072, 128) == 2 and _group_width(4000, 7) == 8 and _group_width(96, 32) == 1
    assert _group_width(1000, 32) == 2  # 8 and 4 divide 1000 but leave too few groups
    assert _group_width(3001, 32) == 1  # odd: no grouping


def test_row_topk_with_ties_masked_entries_and_strided_input() -> None:
    gen = torch.Generator().manual_seed(0)
    ties = torch.randint(0, 5, (32, 4096), generator=gen).float()  # each row holds ~800 copies of its maximum
    _same_selection(ties, 32)
    masked = torch.randn(32, 4096, generator=gen).masked_fill(torch.rand(32, 4096, generator=gen) < 0.995, -torch.inf)
    _same_selection(masked, 32)  # fewer than k finite entries in most rows: the rest are −inf, as with torch.topk
    strided = torch.randn(4096, 32, generator=gen).T  # rows with column stride 32
    _same_selection(strided, 16)
    assert row_topk(torch.randn(0, 4096), 8)[1].shape == (0, 8)
    assert row_topk(torch.randn(3, 4096), 0)[1].shape == (3, 0)
