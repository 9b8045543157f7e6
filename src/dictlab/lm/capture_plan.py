"""The up-front plan of a capture: the texts of every forward batch and the batches of every shard, from
tokenization alone, before any forward pass.

Texts are shuffled (seeded), then sorted by token length inside windows of ``bucket_batches`` batches. The rows a
text gives are a function of its tokenizer output (attention mask, special-tokens mask, ``skip_first``,
``drop_special``, ``pool``; see :mod:`dictlab.lm.positions`), so the shard boundaries follow without running the
model: a shard closes after the batch that brings its rows to ``shard_rows``, after the batch that reaches
``max_tokens`` (the end of the capture), or after the last batch. Every process of a distributed capture computes
the same plan; one process captures the same shards.
"""

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from dictlab.data.store import StoreError, StoreManifest
from dictlab.data.store.manifest import shard_name
from dictlab.lm.capture_config import CaptureConfig
from dictlab.lm.positions import kept_positions

COUNT_CHUNK = 4096
"""Texts whose kept positions are counted in one padded tensor."""


def batch_plan(lengths: list[int], batch_size: int, bucket_batches: int, seed: int) -> list[list[int]]:
    """Text indices of every forward batch: shuffle, then sort by length within windows of ``bucket_batches``."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    window = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), window):
        bucket = sorted(order[start : start + window].tolist(), key=lambda i: lengths[i])
        batches.extend(bucket[b : b + batch_size] for b in range(0, len(bucket), batch_size))
    return batches


def kept_counts(
    attention: list[list[int]], special: list[list[int]], skip_first: int, drop_special: bool
) -> np.ndarray:
    """Kept positions of every text, int64 [n_texts], from its unpadded attention and special-tokens masks."""
    counts = []
    for start in range(0, len(attention), COUNT_CHUNK):
        masks = attention[start : start + COUNT_CHUNK]
        width = max((len(m) for m in masks), default=0)
        real = np.zeros((len(masks), width), np.int64)  # right-padded: 0 = padding
        flags = np.zeros((len(masks), width), np.int64)
        for row, (mask, flag) in enumerate(zip(masks, special[start : start + COUNT_CHUNK], strict=True)):
            real[row, : len(mask)] = mask
            flags[row, : len(flag)] = flag
        keep = kept_positions(torch.from_numpy(real), torch.from_numpy(flags), skip_first, drop_special)
        counts.append(keep.sum(dim=1).numpy())
    return np.concatenate(counts).astype(np.int64) if counts else np.zeros(0, np.int64)


@dataclass(frozen=True)
class PlannedShard:
    """One commit of the capture: forward batches ``start:stop`` and the store's cursor once it is committed."""

    start: int
    stop: int
    rows: int
    tokens: int
    file: str | None
    """Shard file name (the same in every module folder); None when the batches keep no row."""
    texts_done: int
    tokens_seen: int


def shard_plan(
    batches: list[list[int]], rows: np.ndarray, tokens: np.ndarray, shard_rows: int, max_tokens: int | None
) -> list[PlannedShard]:
    """Cut ``batches`` into shards; ``rows`` / ``tokens`` [n_texts] are what each text gives."""
    shards: list[PlannedShard] = []
    start = files = held = held_tokens = texts_done = tokens_seen = 0
    for number, ids in enumerate(batches):
        held += int(rows[ids].sum())
        held_tokens += int(tokens[ids].sum())
        texts_done += len(ids)
        last = max_tokens is not None and tokens_seen + held_tokens >= max_tokens
        if held >= shard_rows or last or number == len(batches) - 1:
            tokens_seen += held_tokens
            file = shard_name(files) if held else None
            files += int(held > 0)
            shards.append(PlannedShard(start, number + 1, held, held_tokens, file, texts_done, tokens_seen))
            start, held, held_tokens = number + 1, 0, 0
        if last:
            break
    return shards


@dataclass(frozen=True)
class CapturePlan:
    """Text ids of every forward batch and the shards they are cut into."""

    batches: list[list[int]]
    shards: list[PlannedShard]

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.shards)

    def digest(self) -> str:
        """sha256 of the whole plan (processes compare it before capturing)."""
        text = json.dumps({"batches": self.batches, "shards": [asdict(s) for s in self.shards]})
        return hashlib.sha256(text.encode()).hexdigest()

    def first_pending(self, manifest: StoreManifest, where: object) -> int:
        """Index of the first shard ``manifest`` has not committed; StoreError if its cursor is not a shard
        boundary of this plan or its committed shards are not the plan's (``where`` names the store)."""
        done = [i + 1 for i, s in enumerate(self.shards) if s.stop == manifest.batches_done]
        first = 0 if manifest.batches_done == 0 else (done[0] if done else -1)
        planned = self.shards[:first]
        files = [s.file for s in planned if s.file is not None]
        found = (manifest.rows, manifest.tokens_seen, manifest.texts_done, [s.file for s in manifest.shards])
        expected = (
            sum(s.rows for s in planned),
            planned[-1].tokens_seen if planned else 0,
            planned[-1].texts_done if planned else 0,
            files,
        )
        if first < 0 or found != expected:
            raise StoreError(
                f"{where}: the store's cursor (batch {manifest.batches_done}, {manifest.rows:,} rows in "
                f"{len(manifest.shards)} shards) is not where this capture's plan commits a shard; it was written "
                "with another tokenizer or shard layout. Pass --overwrite to capture it again"
            )
        return first


def plan_capture(tokenizer: Any, texts: list[str], config: CaptureConfig) -> CapturePlan:
    """The plan of ``config`` over ``texts``, tokenized one by one with ``tokenizer`` (truncated, unpadded)."""
    encoded = tokenizer(texts, truncation=True, max_length=config.max_length, return_special_tokens_mask=True)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    tokens = kept_counts(
        encoded["attention_mask"], encoded["special_tokens_mask"], config.skip_first, config.drop_special
    )
    rows = tokens if config.pool == "none" else (tokens > 0).astype(np.int64)
    batches = batch_plan(lengths, config.batch_size, config.bucket_batches, config.seed)
    return CapturePlan(batches, shard_plan(batches, rows, tokens, config.shard_rows, config.max_tokens))
