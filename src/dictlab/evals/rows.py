"""Which store rows an evaluation reads: a contiguous range, or exactly the chunks a training run held out."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from dictlab.data.store import ActivationStore
from dictlab.data.store.streaming import split_chunks


@dataclass(frozen=True)
class RowSelection:
    """Row ranges ``[start, stop)`` of one store module, in order, and how they were chosen."""

    ranges: tuple[tuple[int, int], ...]
    description: str

    @property
    def n_rows(self) -> int:
        return sum(stop - start for start, stop in self.ranges)

    def batches(self, store: ActivationStore, batch_size: int) -> Iterator[np.ndarray]:
        """The selected rows as consecutive [≤ batch_size, width] arrays (a batch never spans two ranges)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for start, stop in self.ranges:
            for lo in range(start, stop, batch_size):
                yield store.read(lo, min(lo + batch_size, stop))

    def text_index_batches(self, store: ActivationStore, batch_size: int) -> Iterator[np.ndarray]:
        """The corpus index of every row's text, int64 [≤ batch_size], aligned with :meth:`batches`."""
        for start, stop in self.ranges:
            for lo in range(start, stop, batch_size):
                yield store.text_index(lo, min(lo + batch_size, stop))

    def text_ids(self, store: ActivationStore, limit: int) -> list[int]:
        """The first ``limit`` distinct texts (corpus indices) the selected rows come from, in row order."""
        seen: dict[int, None] = {}
        for start, stop in self.ranges:
            for text in store.text_index(start, stop).tolist():
                seen.setdefault(text)
                if len(seen) >= limit:
                    return list(seen)
        return list(seen)


def contiguous_rows(store: ActivationStore, first_row: int, rows: int) -> RowSelection:
    """At most ``rows`` rows from ``first_row`` on; an error names the store when ``first_row`` is past its end."""
    if first_row < 0 or rows < 1:
        raise ValueError(f"first_row must be >= 0 and rows >= 1, got {first_row} and {rows}")
    if first_row >= store.n_rows:
        raise ValueError(f"--first-row {first_row:,} is past the end of {store.root} ({store.n_rows:,} rows)")
    stop = min(store.n_rows, first_row + rows)
    return RowSelection(((first_row, stop),), f"rows {first_row:,}–{stop:,} of {store.root}")


def held_out_rows(store: ActivationStore, request: Mapping[str, Any], max_rows: int) -> RowSelection | None:
    """The chunks that ``dictlab train`` held out of this store, from the run's recorded train request
    (``chunk_rows`` and ``holdout_fraction``; the split seed is always 0), at most ``max_rows`` rows; None when the
    request does not describe a split of a store of this size (another store, or nothing held out)."""
    chunk_rows, fraction = request.get("chunk_rows"), request.get("holdout_fraction")
    if not isinstance(chunk_rows, int) or not isinstance(fraction, int | float) or not 0 < fraction < 1:
        return None
    n_chunks = store.n_rows // chunk_rows
    if n_chunks < 2:
        return None
    _, held = split_chunks(n_chunks, float(fraction), 0)
    ranges, total = [], 0
    for chunk in held:
        take = min(chunk_rows, max_rows - total)
        if take <= 0:
            break
        ranges.append((chunk * chunk_rows, chunk * chunk_rows + take))
        total += take
    return RowSelection(tuple(ranges), f"{total:,} rows the training run held out ({len(ranges)} chunks)")
