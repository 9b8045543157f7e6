"""Token ids kept beside a store's activations: the per-batch token files under either padding side, contexts and
positions read back, and stores without token files (older ones) handled with clear errors."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dictlab.data.store import ActivationStore, StoreError, StoreWriter
from dictlab.data.store.tokens import POOLED, SEPARATOR, ShardTokens, batch_tokens, contexts, positions
from dictlab.lm.positions import kept_positions

TEXTS = [[5, 6, 7, 8], [9, 10], [11, 12, 13]]


def padded(side: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(t) for t in TEXTS)
    ids = torch.zeros(len(TEXTS), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, text in enumerate(TEXTS):
        where = slice(0, len(text)) if side == "right" else slice(width - len(text), width)
        ids[b, where], mask[b, where] = torch.tensor(text), 1
    return ids, mask


@pytest.mark.parametrize("side", ["right", "left"])
def test_batch_tokens_hold_every_text_and_point_at_each_kept_row(side: str) -> None:
    ids, mask = padded(side)
    keep = kept_positions(mask, None, skip_first=1)
    files = batch_tokens(ids, mask, keep, "none")
    assert files.tokens.tolist() == [5, 6, 7, 8, SEPARATOR, 9, 10, SEPARATOR, 11, 12, 13, SEPARATOR]
    assert files.tokens[files.index].tolist() == [6, 7, 8, 10, 12, 13]  # the kept positions, row-major
    assert positions(files.tokens, files.index).tolist() == [1, 2, 3, 1, 1, 2]
    around = contexts(files.tokens, files.index, 2)
    assert around[0].tolist() == [SEPARATOR, 5, 6, 7, 8]  # never crosses into the neighbouring text
    assert around[3].tolist() == [SEPARATOR, 9, 10, SEPARATOR, SEPARATOR]
    pooled = batch_tokens(ids, mask, keep, "mean")
    assert pooled.index.tolist() == [POOLED] * 3 and (contexts(pooled.tokens, pooled.index, 1) == SEPARATOR).all()


def test_concatenated_batches_shift_their_indices() -> None:
    ids, mask = padded("right")
    keep = kept_positions(mask, None, skip_first=0)
    one = batch_tokens(ids, mask, keep, "none")
    both = ShardTokens.concat([one, one])
    assert both.tokens.size == 2 * one.tokens.size
    assert both.tokens[both.index].tolist() == 2 * one.tokens[one.index].tolist()


def _store(root: Path, tokens: bool) -> StoreWriter:
    return StoreWriter.open(root, "toy", {"b": 2}, "float32", {}, np.zeros(3, np.int64), ["x"], tokens=tokens)


def test_store_reads_contexts_positions_and_ids_across_shards(tmp_path: Path) -> None:
    writer = _store(tmp_path / "s", tokens=True)
    ids, mask = padded("right")
    keep = kept_positions(mask, None, skip_first=1)
    files = batch_tokens(ids, mask, keep, "none")
    for shard in range(2):
        text_index = np.asarray([0, 0, 0, 1, 2, 2])
        writer.commit({"b": np.ones((6, 2), np.float32)}, text_index, shard + 1, 3, 6 * (shard + 1), files)
    store = ActivationStore(tmp_path / "s")
    assert store.has_tokens and store.n_rows == 12
    rows = np.asarray([11, 0, 6, 3])
    assert store.token_ids(rows).tolist() == [13, 6, 6, 10]
    assert store.positions(rows).tolist() == [2, 1, 1, 1]
    assert store.contexts(rows, 1).tolist() == [[12, 13, SEPARATOR], [5, 6, 7], [5, 6, 7], [9, 10, SEPARATOR]]


def test_token_files_are_checked_and_old_stores_are_refused(tmp_path: Path) -> None:
    writer = _store(tmp_path / "with", tokens=True)
    block = {"b": np.ones((2, 2), np.float32)}
    with pytest.raises(StoreError, match="needs them for every shard"):
        writer.commit(block, np.zeros(2), 1, 1, 2)
    bad = ShardTokens(np.asarray([1, 2, SEPARATOR], np.int32), np.asarray([0, 2]))  # row 1 points at a separator
    with pytest.raises(StoreError, match="separator"):
        writer.commit(block, np.zeros(2), 1, 1, 2, bad)
    assert not [p for p in (tmp_path / "with").rglob("*.npy") if p.name != "labels.npy"]  # nothing half-written
    old = _store(tmp_path / "old", tokens=False)
    old.commit(block, np.zeros(2), 1, 1, 2)
    store = ActivationStore(tmp_path / "old")
    assert not store.has_tokens and store.read(0, 2).shape == (2, 2)  # still reads for training
    with pytest.raises(StoreError, match="keeps no token ids"):
        store.contexts(np.asarray([0]), 2)
    with pytest.raises(StoreError, match="captured without token ids"):
        _store(tmp_path / "old", tokens=True)
