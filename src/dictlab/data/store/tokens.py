"""The token ids a store keeps beside its activations, so that a row's context can be shown without the corpus or
the tokenizer's encoding.

Every shard ``shard-N.npy`` has two token files:

* ``tokens/shard-N.npy`` int32 [m]: the model input of every text with rows in the shard (its real tokens, padding
  removed, special tokens kept), in text order, each text followed by :data:`SEPARATOR`;
* ``token_index/shard-N.npy`` int64 [rows]: where each row's own token sits in that array (−1 for a row pooled
  over a whole text).

A text never straddles two shards (shards hold whole forward batches), so the context of a row is a slice of its
shard's ``tokens`` bounded by the separators either side.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

SEPARATOR = -1
"""Ends every text in a shard's ``tokens`` array (never a token id)."""
POOLED = -1
"""``token_index`` of a row that stands for a whole text (``--pool mean``)."""


@dataclass(frozen=True)
class ShardTokens:
    """The token files of one shard: ``tokens`` int32 [m] (texts, each ended by SEPARATOR) and ``index`` int64
    [rows] (each row's token in ``tokens``, or POOLED)."""

    tokens: np.ndarray
    index: np.ndarray

    @classmethod
    def concat(cls, parts: "list[ShardTokens]") -> "ShardTokens":
        """The parts (consecutive batches of one shard) as one shard's token files."""
        tokens, index, base = [], [], 0
        for part in parts:
            tokens.append(part.tokens)
            index.append(np.where(part.index == POOLED, POOLED, part.index + base))
            base += part.tokens.shape[0]
        return cls(
            np.concatenate(tokens).astype(np.int32) if tokens else np.zeros(0, np.int32),
            np.concatenate(index).astype(np.int64) if index else np.zeros(0, np.int64),
        )

    def check(self, rows: int) -> None:
        """ValueError unless these files fit a shard of ``rows`` rows."""
        if self.tokens.ndim != 1 or self.index.shape != (rows,):
            raise ValueError(
                f"token files of shape {list(self.tokens.shape)} and {list(self.index.shape)} do not fit {rows} rows"
            )
        if rows and ((self.index < POOLED) | (self.index >= self.tokens.shape[0])).any():
            raise ValueError("a row's token index points outside its shard's tokens")
        pointed = self.index[self.index != POOLED]
        if pointed.size and (self.tokens[pointed] == SEPARATOR).any():
            raise ValueError("a row's token index points at a text separator")


def batch_tokens(input_ids: Tensor, attention_mask: Tensor, keep: Tensor, pool: str) -> ShardTokens:
    """Token files of one forward batch (positions relative to this batch): ``input_ids``, ``attention_mask`` and
    ``keep`` are [batch, seq]; rows are the kept positions in row-major order (``pool="none"``), or one per text
    with a kept position (``"mean"``), as :func:`dictlab.lm.capture.batch_rows` makes them. Works with either
    padding side."""
    real = attention_mask.bool().cpu()
    ids = input_ids.cpu()
    lengths = real.sum(dim=1)
    starts = torch.cumsum(lengths + 1, dim=0) - (lengths + 1)  # where each text begins in the flat array
    flat = torch.full((int((lengths + 1).sum()),), SEPARATOR, dtype=torch.int64)
    rank = torch.cumsum(real.long(), dim=1) - 1  # index of a real position among its text's real tokens
    where = starts.unsqueeze(1) + rank
    flat[where[real]] = ids[real]
    kept = keep.cpu()
    index = where[kept] if pool == "none" else torch.full((int(kept.any(dim=1).sum()),), POOLED)
    return ShardTokens(flat.to(torch.int32).numpy(), index.numpy().astype(np.int64))


def contexts(tokens: np.ndarray, index: np.ndarray, window: int) -> np.ndarray:
    """±``window`` tokens around each of ``index`` [n] in one shard's ``tokens``: int32 [n, 2·window + 1], the
    row's own token in column ``window``, SEPARATOR where the context runs past the row's text (everywhere for
    POOLED rows, which stand for no single token)."""
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    n = index.shape[0]
    offsets = np.arange(-window, window + 1)
    where = index[:, None] + offsets[None, :]  # [n, 2w+1]
    valid = (where >= 0) & (where < tokens.shape[0]) & (index[:, None] != POOLED)
    ids = np.full((n, offsets.size), SEPARATOR, np.int32)
    ids[valid] = tokens[where[valid]]
    # Cut at the first separator on each side of the centre (the neighbouring texts).
    is_sep = ids == SEPARATOR
    left = is_sep[:, :window][:, ::-1].cumsum(axis=1)[:, ::-1] > 0  # a separator at or right of it, left side
    right = is_sep[:, window + 1 :].cumsum(axis=1) > 0
    ids[:, :window][left] = SEPARATOR
    ids[:, window + 1 :][right] = SEPARATOR
    return ids


def positions(tokens: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Position of each row's token in its text (0 = the text's first input token; −1 for POOLED rows), int64
    [n], from one shard's token files."""
    separators = np.flatnonzero(tokens == SEPARATOR)
    previous = np.searchsorted(separators, index, side="left") - 1  # the separator ending the text before
    start = np.where(previous >= 0, separators[np.maximum(previous, 0)] + 1, 0)
    return np.where(index == POOLED, -1, index - start).astype(np.int64)
