"""Read an activation store: rows of one module by global index, memory-mapped shard by shard."""

import bisect
from pathlib import Path

import numpy as np

from dictlab.data.store.manifest import (
    LABELS_FILE,
    TEXT_INDEX_DIR,
    TOKEN_INDEX_DIR,
    TOKENS_DIR,
    ModuleEntry,
    StoreError,
    StoreManifest,
    read_manifest,
)
from dictlab.data.store.shards import open_shard, read_rows
from dictlab.data.store.tokens import contexts, positions


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
            if self.has_tokens:
                open_shard(self.root / TOKEN_INDEX_DIR / shard.file, shard.rows, None, "int64")
                self._tokens(shard.file)

    @property
    def has_tokens(self) -> bool:
        """Whether the store keeps token ids (stores captured before dictlab kept them do not)."""
        return self.manifest.tokens

    def require_tokens(self, purpose: str) -> None:
        """StoreError naming ``purpose`` unless the store keeps token ids."""
        if not self.has_tokens:
            raise StoreError(
                f"{self.root} keeps no token ids (it was captured before dictlab stored them, or written without "
                f"them), which {purpose} needs; capture it again with `dictlab capture ... --overwrite`"
            )

    def _tokens(self, file: str) -> np.ndarray:
        path = self.root / TOKENS_DIR / file
        if not path.is_file():
            raise StoreError(f"shard {path} is missing")
        try:
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise StoreError(f"shard {path} is truncated or corrupt: {err}") from err
        if mapped.ndim != 1 or mapped.dtype.newbyteorder("=") != np.dtype("int32"):
            raise StoreError(f"shard {path} holds {mapped.dtype}{list(mapped.shape)}, expected int32 [tokens]")
        return mapped

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

    def _token_pieces(self, rows: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(shard, positions in ``rows``, local rows) for every shard that holds some of ``rows`` [n]."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.n_rows):
            raise IndexError(f"rows outside the store's {self.n_rows} rows")
        shard_of = np.searchsorted(np.asarray(self.offsets), rows, side="right") - 1
        return [
            (int(i), where, rows[where] - self.offsets[i])
            for i in np.unique(shard_of)
            for where in [np.flatnonzero(shard_of == i)]
        ]

    def _token_files(self, shard: int) -> tuple[np.ndarray, np.ndarray]:
        entry = self.manifest.shards[shard]
        index = open_shard(self.root / TOKEN_INDEX_DIR / entry.file, entry.rows, None, "int64")
        return self._tokens(entry.file), index

    def token_ids(self, rows: np.ndarray) -> np.ndarray:
        """Token id of each of ``rows`` [n] (global row numbers, any order): int64 [n], −1 for pooled rows."""
        return self.contexts(rows, 0)[:, 0].astype(np.int64)

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Position of each of ``rows`` [n] in its text's model input (0 = first input token): int64 [n], −1 for
        pooled rows."""
        self.require_tokens("reading token positions")
        out = np.empty(len(rows), np.int64)
        for shard, where, local in self._token_pieces(rows):
            tokens, index = self._token_files(shard)
            out[where] = positions(np.asarray(tokens), np.asarray(index[local]))
        return out

    def contexts(self, rows: np.ndarray, window: int) -> np.ndarray:
        """±``window`` token ids around each of ``rows`` [n]: int32 [n, 2·window + 1], the row's own token in column
        ``window``, −1 where the context runs past its text (and everywhere for pooled rows)."""
        self.require_tokens("showing token contexts")
        out = np.empty((len(rows), 2 * window + 1), np.int32)
        for shard, where, local in self._token_pieces(rows):
            tokens, index = self._token_files(shard)
            out[where] = contexts(np.asarray(tokens), np.asarray(index[local]), window)
        return out

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
