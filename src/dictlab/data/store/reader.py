"""Read an activation store: rows of one module by global index, memory-mapped shard by shard."""

import bisect
from pathlib import Path

import numpy as np

from dictlab.data.store.manifest import (
    LABELS_FILE,
    TEXT_INDEX_DIR,
    ModuleEntry,
    StoreError,
    StoreManifest,
    read_manifest,
)
from dictlab.data.store.shards import open_shard, read_rows


class ActivationStore:
    """One module of a store, addressed as a single [rows, width] table (rows in capture order).

    Opening checks every committed shard's header (missing, truncated, corrupt or mis-shaped files are reported by
    name); rows are read through short-lived memory maps, so reading never holds more than the rows asked for.
    """

    def __init__(self, root: str | Path, module: str | None = None) -> None:
        self.root = Path(root)
        self.manifest: StoreManifest = read_manifest(self.root)
        self.entry: ModuleEntry = self.manifest.module(module)
        self.offsets = np.cumsum([0] + [s.rows for s in self.manifest.shards]).tolist()
        for shard in self.manifest.shards:
            open_shard(self._path(shard.file), shard.rows, self.width, self.manifest.dtype)
            open_shard(self.root / TEXT_INDEX_DIR / shard.file, shard.rows, None, "int64")

    @property
    def width(self) -> int:
        return self.entry.width

    @property
    def n_rows(self) -> int:
        return int(self.offsets[-1])

    @property
    def label_names(self) -> list[str]:
        return self.manifest.label_names

    def _path(self, file: str) -> Path:
        return self.root / self.entry.folder / file

    def _pieces(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """(shard index, local start, local stop) covering global rows [start, stop)."""
        if not 0 <= start <= stop <= self.n_rows:
            raise IndexError(f"rows [{start}, {stop}) outside the store's {self.n_rows} rows")
        pieces = []
        shard = bisect.bisect_right(self.offsets, start) - 1
        while start < stop:
            end = min(stop, self.offsets[shard + 1])
            pieces.append((shard, start - self.offsets[shard], end - self.offsets[shard]))
            start, shard = end, shard + 1
        return pieces

    def read(self, start: int, stop: int) -> np.ndarray:
        """Activations of rows [start, stop): [stop − start, width], in the store's dtype."""
        blocks = [
            read_rows(self._path(s.file), s.rows, self.width, self.manifest.dtype, a, b)
            for s, a, b in ((self.manifest.shards[i], a, b) for i, a, b in self._pieces(start, stop))
        ]
        if not blocks:
            return np.empty((0, self.width), dtype=self.manifest.dtype)
        out = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        if not np.isfinite(out).all():
            raise StoreError(f"{self.root}: rows [{start}, {stop}) of {self.entry.name} contain NaN or Inf")
        return out

    def text_index(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Corpus index of the text of every row in [start, stop): int64 [n]."""
        stop = self.n_rows if stop is None else stop
        blocks = [
            read_rows(
                self.root / TEXT_INDEX_DIR / self.manifest.shards[i].file,
                self.manifest.shards[i].rows,
                None,
                "int64",
                a,
                b,
            )
            for i, a, b in self._pieces(start, stop)
        ]
        return np.concatenate(blocks) if blocks else np.empty(0, dtype=np.int64)

    def labels(self) -> np.ndarray:
        """Class label of every row (via its text): int64 [n_rows]."""
        path = self.root / LABELS_FILE
        try:
            per_text = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            raise StoreError(f"{path} is missing or corrupt: {err}") from err
        index = self.text_index()
        if index.size and index.max() >= per_text.shape[0]:
            raise StoreError(f"{path} has {per_text.shape[0]} labels but rows refer to text {index.max()}")
        return per_text[index]
