"""Activation store: commits, resume after an interrupted commit, validation of shards, streamed batches (read
ahead by a background thread)."""

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from dictlab.data.store import ActivationStore, StoreBatches, StoreError, StoreWriter, read_manifest, split_chunks
from dictlab.data.store.prefetch import THREAD_NAME
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, TrainConfig, Trainer

WIDTH = 6


def _write_store(root: Path, shard_sizes: list[int], seed: int = 0) -> np.ndarray:
    """A one-module store whose row r is filled so that rows are identifiable; returns all rows in order."""
    rng = np.random.default_rng(seed)
    writer = StoreWriter.open(root, "toy", {"blocks.0": WIDTH}, "float32", {"s": 1}, np.arange(4), list("abcd"))
    rows, start = [], 0
    for i, n in enumerate(shard_sizes):
        block = rng.normal(size=(n, WIDTH)).astype(np.float32)
        block[:, 0] = np.arange(start, start + n)  # column 0 = global row id
        writer.commit({"blocks.0": block}, np.arange(start, start + n) % 4, i + 1, start + n, start + n)
        rows.append(block)
        start += n
    writer.finish()
    return np.concatenate(rows)


def test_rows_read_back_across_shards_with_stats(tmp_path: Path) -> None:
    rows = _write_store(tmp_path / "s", [5, 7, 3])
    store = ActivationStore(tmp_path / "s")
    assert store.n_rows == 15 and store.width == WIDTH
    np.testing.assert_array_equal(store.read(3, 13), rows[3:13])  # spans three shards
    np.testing.assert_array_equal(store.text_index(), np.arange(15) % 4)
    np.testing.assert_array_equal(store.labels(), np.arange(15) % 4)
    stats = store.entry.stats
    np.testing.assert_allclose(stats.mean, rows.astype(np.float64).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.rms_norm, np.sqrt((np.linalg.norm(rows, axis=1) ** 2).mean()), rtol=1e-6)
    assert stats.norm_max == pytest.approx(np.linalg.norm(rows, axis=1).max(), rel=1e-6)
    with pytest.raises(IndexError):
        store.read(10, 16)


def test_reopen_removes_uncommitted_shards_and_continues(tmp_path: Path) -> None:
    root = tmp_path / "s"
    _write_store(root, [4, 4])
    manifest = read_manifest(root)
    manifest.complete = False
    orphan = root / "blocks.0" / "shard-000002.npy"  # written, but the kill came before the manifest update
    np.save(orphan, np.zeros((3, WIDTH), np.float32))
    np.save(root / "text_index" / "shard-000002.npy", np.zeros(3, np.int64))
    writer = StoreWriter.open(root, "toy", {"blocks.0": WIDTH}, "float32", {"s": 1}, np.arange(4), list("abcd"))
    assert not orphan.exists()
    assert writer.manifest.batches_done == 2 and writer.manifest.rows == 8
    writer.commit({"blocks.0": np.ones((2, WIDTH), np.float32)}, np.zeros(2), 3, 10, 10)
    assert ActivationStore(root).n_rows == 10


def test_reopen_with_other_settings_is_refused(tmp_path: Path) -> None:
    _write_store(tmp_path / "s", [4])
    with pytest.raises(StoreError, match="different capture"):
        StoreWriter.open(tmp_path / "s", "toy", {"blocks.0": WIDTH}, "float32", {"s": 2}, np.arange(4), list("abcd"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(StoreError, match="not an activation store"):
        StoreWriter.open(tmp_path / "other", "toy", {"b": 2}, "float32", {}, np.arange(1), ["a"])


def test_nan_rows_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    writer = StoreWriter.open(tmp_path / "s", "toy", {"b": 2}, "float32", {}, np.arange(1), ["a"])
    with pytest.raises(StoreError, match="NaN"):
        writer.commit({"b": np.array([[np.nan, 0.0]], np.float32)}, np.zeros(1), 1, 1, 1)
    assert ActivationStore(tmp_path / "s", "b").n_rows == 0
    assert not (tmp_path / "s" / "b").exists()


def test_truncated_corrupt_and_missing_shards_are_named(tmp_path: Path) -> None:
    root = tmp_path / "s"
    _write_store(root, [5, 5])
    shard = root / "blocks.0" / "shard-000001.npy"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 16])
    with pytest.raises(StoreError, match=r"shard-000001\.npy.*truncated or corrupt"):
        ActivationStore(root)
    shard.write_bytes(b"not a numpy file at all")
    with pytest.raises(StoreError, match=r"shard-000001\.npy"):
        ActivationStore(root)
    shard.unlink()
    with pytest.raises(StoreError, match=r"shard-000001\.npy is missing"):
        ActivationStore(root)
    (root / "manifest.json").write_text("{ broken")
    with pytest.raises(StoreError, match=r"manifest\.json is not valid JSON"):
        ActivationStore(root)
    with pytest.raises(StoreError, match="not an activation store"):
        ActivationStore(tmp_path / "nowhere")


def test_unknown_or_ambiguous_module(tmp_path: Path) -> None:
    writer = StoreWriter.open(tmp_path / "s", "toy", {"a": 2, "b": 3}, "float32", {}, np.arange(1), ["x"])
    writer.commit({"a": np.ones((1, 2), np.float32), "b": np.ones((1, 3), np.float32)}, np.zeros(1), 1, 1, 1)
    with pytest.raises(StoreError, match="choose one"):
        ActivationStore(tmp_path / "s")
    with pytest.raises(StoreError, match="no module 'c'"):
        ActivationStore(tmp_path / "s", "c")
    assert ActivationStore(tmp_path / "s", "b").width == 3


def test_split_chunks_is_deterministic_and_disjoint() -> None:
    train, held = split_chunks(40, 0.1, seed=3)
    assert len(held) == 4 and not set(train) & set(held) and sorted(train + held) == list(range(40))
    assert split_chunks(40, 0.1, seed=3) == (train, held)
    assert split_chunks(3, 0.0, seed=0) == ([0, 1, 2], [])
    with pytest.raises(ValueError, match="holdout_fraction"):
        split_chunks(3, 1.0, seed=0)


def test_streamed_batches_cover_every_training_row_once_per_epoch(tmp_path: Path) -> None:
    rows = _write_store(tmp_path / "s", [37, 50, 41, 64, 48])  # 240 rows; chunks of 16 span shards
    store = ActivationStore(tmp_path / "s")
    batches = StoreBatches(store, batch_size=8, seed=1, buffer_rows=48, chunk_rows=16, holdout_fraction=0.2)
    assert batches.n_samples == 16 * len(batches.train_chunks) == 192 and batches.buffer_rows == 48
    seen = torch.cat([batches.batch(s) for s in range(batches.steps_per_epoch)])
    ids = seen[:, 0].long()
    expected = torch.cat([torch.arange(c * 16, (c + 1) * 16) for c in batches.train_chunks])
    assert torch.equal(ids.sort().values, expected.sort().values)  # each training row exactly once
    torch.testing.assert_close(seen, torch.from_numpy(rows[ids.numpy()]))
    held_ids = set(batches.holdout()[:, 0].long().tolist())
    assert len(held_ids) == 48 and not held_ids & set(ids.tolist())
    assert not torch.equal(ids, expected)  # shuffled
    second = torch.cat([batches.batch(batches.steps_per_epoch + s) for s in range(batches.steps_per_epoch)])
    assert not torch.equal(second[:, 0], seen[:, 0])  # a new order each epoch


def test_batches_are_a_pure_function_of_seed_and_step(tmp_path: Path) -> None:
    _write_store(tmp_path / "s", [100, 100])
    store = ActivationStore(tmp_path / "s")
    first = StoreBatches(store, batch_size=10, seed=5, buffer_rows=40, chunk_rows=20, holdout_fraction=0.1)
    fresh = StoreBatches(store, batch_size=10, seed=5, buffer_rows=40, chunk_rows=20, holdout_fraction=0.1)
    steps = [0, 13, 3, 30, 13]  # out of order and repeated: what a resumed run does
    for step in steps:
        torch.testing.assert_close(first.batch(step), fresh.batch(step))
    other = StoreBatches(store, batch_size=10, seed=6, buffer_rows=40, chunk_rows=20, holdout_fraction=0.1)
    assert not torch.equal(other.batch(0), first.batch(0))
    assert first._buffer.shape[0] <= 40  # memory: one buffer
    scaled = StoreBatches(store, batch_size=10, seed=5, buffer_rows=40, chunk_rows=20, holdout_fraction=0.1, scale=2)
    torch.testing.assert_close(scaled.batch(3), 2 * first.batch(3))
    with pytest.raises(ValueError, match="exceeds"):
        StoreBatches(store, batch_size=500, chunk_rows=20)


def test_rows_over_the_norm_limit_are_dropped_everywhere(tmp_path: Path) -> None:
    rows = _write_store(tmp_path / "s", [120, 120])  # column 0 = row id, so late rows have large norms
    store = ActivationStore(tmp_path / "s")
    limit = 0.8 * store.entry.stats.rms_norm
    typical = set(np.flatnonzero(np.linalg.norm(rows, axis=1) <= limit).tolist())
    assert 0 < len(typical) < len(rows)
    batches = StoreBatches(
        store, batch_size=8, seed=1, buffer_rows=48, chunk_rows=16, holdout_fraction=0.2, scale=2, max_norm_ratio=0.8
    )
    plain = StoreBatches(store, batch_size=8, seed=1, buffer_rows=48, chunk_rows=16, holdout_fraction=0.2, scale=2)
    for step in range(batches.steps_per_epoch):
        ids = set((batches.batch(step)[:, 0] / 2).long().tolist())
        assert ids == set((plain.batch(step)[:, 0] / 2).long().tolist()) & typical  # same order, outliers gone
    assert set((batches.holdout()[:, 0] / 2).long().tolist()) <= typical
    assert set((batches.sample(64, torch.Generator().manual_seed(0))[:, 0] / 2).long().tolist()) <= typical
    with pytest.raises(ValueError, match="max_norm_ratio"):
        StoreBatches(store, batch_size=8, chunk_rows=16, max_norm_ratio=float("nan"))


def test_one_lane_is_the_plain_stream_and_lanes_split_the_chunks(tiny_store: Path) -> None:
    from dictlab.data.store import LaneBatches

    store = ActivationStore(tiny_store)
    plain = StoreBatches(store, 64, 5, 1024, 256, 0.05)
    one = LaneBatches(store, 64, 1, 5, 1024, 256, 0.05)
    assert one.n_samples == plain.n_samples and one.buffer_rows == plain.buffer_rows
    for step in (0, 3, 40, 500):
        assert torch.equal(one.batch(step), plain.batch(step))
    two = LaneBatches(store, 64, 2, 5, 1024, 256, 0.05)  # one process serves both lanes
    lanes = [set(stream.train_chunks) for stream in two.streams]
    assert not lanes[0] & lanes[1] and lanes[0] | lanes[1] == set(plain.train_chunks)
    assert two.batch(7).shape == (64, store.width) and two.n_samples == plain.n_samples
    generator_a, generator_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(two.sample(300, generator_a), plain.sample(300, generator_b))  # pools cover every chunk
    with pytest.raises(ValueError, match="not a multiple of --lanes 3"):
        LaneBatches(store, 64, 3, 5, 1024, 256, 0.05)


@contextlib.contextmanager
def _no_prefetch_thread_left() -> Iterator[None]:
    """Check that the block ends every prefetch thread it starts."""

    def alive() -> set[threading.Thread]:
        return {thread for thread in threading.enumerate() if thread.name.startswith(THREAD_NAME)}

    before = alive()
    yield
    assert not alive() - before


class _Recorded(StoreBatches):
    """Store batches that note every buffer read: (epoch, group) and the thread that read it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[tuple[int, int], str]] = []

    def _read_group(self, key: tuple[int, int]) -> torch.Tensor:
        self.reads.append((key, threading.current_thread().name))
        return super()._read_group(key)


def test_prefetched_batches_are_the_sequential_ones_across_buffers_epochs_and_resume(tmp_path: Path) -> None:
    _write_store(tmp_path / "s", [37, 50, 41, 64, 48])  # 240 rows: 15 chunks of 16, 13 for training
    store = ActivationStore(tmp_path / "s")
    settings = dict(batch_size=32, seed=3, buffer_rows=48, chunk_rows=16, holdout_fraction=0.1)
    plain = StoreBatches(store, **settings, prefetch=False)
    # buffers of 3, 3, 3, 3 and 1 chunks: one batch each, none from the last (the next epoch follows)
    assert len(plain.train_chunks) == 13 and plain.steps_per_epoch == 4
    steps = range(3 * plain.steps_per_epoch)
    with _no_prefetch_thread_left():
        ahead = _Recorded(store, **settings)
        for step in steps:
            assert torch.equal(ahead.batch(step), plain.batch(step)), step
            deadline = time.monotonic() + 10  # one batch per buffer: the next buffer's read starts, unasked
            while len(ahead.reads) < step + 2 and time.monotonic() < deadline:
                time.sleep(0.001)
        ahead.close()
        in_order = [(epoch, group) for epoch in range(3) for group in range(4)]  # buffer 4 has no batch: skipped
        assert [key for key, _ in ahead.reads] == [*in_order, (3, 0)]  # each buffer read once, one ahead
        assert all(name.startswith(THREAD_NAME) for _, name in ahead.reads)
        resumed = StoreBatches(store, **settings)  # a resumed run asks from its checkpoint's step on, out of order
        for step in [6, 7, 8, 9, 2, 11, 11, 0, 5]:
            assert torch.equal(resumed.batch(step), plain.batch(step)), step
        resumed.close()


def _shard_read_only_by_the_second_buffer(root: Path, settings: dict) -> Path:
    """A shard of ``root``'s store that the second buffer of epoch 0 reads and the first does not."""
    store = ActivationStore(root)
    plain = StoreBatches(store, **settings, prefetch=False)
    per_buffer = plain.buffer_rows // plain.batch_size

    def shards(steps: range) -> set[int]:
        rows = torch.cat([plain.batch(step)[:, 0] for step in steps]).long().tolist()
        return {int(np.searchsorted(store.offsets, row, side="right")) - 1 for row in rows}

    only_second = shards(range(per_buffer, 2 * per_buffer)) - shards(range(per_buffer))
    assert only_second, "the seed must give the second buffer a shard of its own"
    return root / store.entry.folder / store.manifest.shards[min(only_second)].file


STORE_SETTINGS = dict(batch_size=16, seed=3, buffer_rows=48, chunk_rows=16, holdout_fraction=0.0)
"""Buffers of 3 chunks (3 batches each) over a store of 5 shards of 3 chunks."""


def test_a_read_error_in_the_prefetch_thread_is_raised_by_the_batch_that_needs_it(tmp_path: Path) -> None:
    _write_store(tmp_path / "s", [48] * 5)
    missing = _shard_read_only_by_the_second_buffer(tmp_path / "s", STORE_SETTINGS)
    with _no_prefetch_thread_left():
        batches = StoreBatches(ActivationStore(tmp_path / "s"), **STORE_SETTINGS)
        missing.unlink()
        for step in range(3):
            batches.batch(step)  # the first buffer is whole; the thread's read of the second fails meanwhile
        with pytest.raises(StoreError, match=f"shard {missing} is missing"):
            batches.batch(3)
        with pytest.raises(StoreError, match="is missing"):  # asked again, it is read again
            batches.batch(4)
        batches.close()


def _store_trainer(root: Path, workdir: Path | None, prefetch: bool = True, probe=None) -> Trainer:
    cfg = DictionaryConfig(d_in=WIDTH, d_out=WIDTH, d_sae=24, activation="topk", k=2)
    recipe = RecipeConfig(lr=3e-3, aux_coefficient=1 / 32, dead_window_samples=32)
    member = Member("topk", SparseDictionary(cfg, torch.Generator().manual_seed(0)), recipe, probe=probe)
    batches = StoreBatches(ActivationStore(root), **STORE_SETTINGS, prefetch=prefetch)
    config = TrainConfig(batch_size=16, steps=40, checkpoint_every=5, log_every=5, progress=False, seed=3)
    return Trainer([member], batches, config, workdir=workdir)


def test_training_on_prefetched_store_batches_resumes_to_the_sequential_run(tmp_path: Path) -> None:
    _write_store(tmp_path / "s", [48] * 5)  # 15 steps per epoch: 40 steps cross two epochs
    reference = _store_trainer(tmp_path / "s", tmp_path / "plain", prefetch=False)
    reference.fit()
    with _no_prefetch_thread_left():
        _store_trainer(tmp_path / "s", tmp_path / "ahead").fit(until_step=13)  # "killed" mid-buffer after step 13
    with _no_prefetch_thread_left():
        resumed = _store_trainer(tmp_path / "s", tmp_path / "ahead")
        assert resumed.step == 10  # the last checkpoint
        resumed.fit()
    expected, got = reference.states[0].member.model.state_dict(), resumed.states[0].member.model.state_dict()
    assert all(torch.equal(expected[name], got[name]) for name in expected)
    assert resumed.states[0].last["auxk"] > 0  # AuxK had dead latents to train


def test_a_failing_or_interrupted_fit_leaves_no_prefetch_thread(tmp_path: Path) -> None:
    _write_store(tmp_path / "s", [48] * 5)
    missing = _shard_read_only_by_the_second_buffer(tmp_path / "s", STORE_SETTINGS)

    def interrupt(model: SparseDictionary) -> dict[str, float]:
        raise KeyboardInterrupt  # Ctrl-C at the first log step, mid-buffer

    with _no_prefetch_thread_left(), pytest.raises(KeyboardInterrupt):
        _store_trainer(tmp_path / "s", tmp_path / "interrupted", probe=interrupt).fit()
    with _no_prefetch_thread_left():
        trainer = _store_trainer(tmp_path / "s", None)  # reads batch 0, so the second buffer's read starts ahead
        trainer.batches.close()  # let that read end before the shard goes; fit reads the second buffer afresh
        missing.unlink()
        with pytest.raises(StoreError, match=f"shard {missing} is missing"):
            trainer.fit()
    assert trainer.step == 3
