"""Read and write one ``.npy`` shard, with errors that name the file."""

from pathlib import Path

import numpy as np

from dictlab.data.store.manifest import StoreError
from dictlab.files.atomic import atomic_path


def write_shard(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` atomically (a reader never sees a partial shard under its final name)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def open_shard(path: Path, rows: int, width: int | None, dtype: str) -> np.ndarray:
    """Memory-map a shard and check it against what the manifest says it holds.

    Raises StoreError for a missing, truncated or corrupt file, or one whose shape or dtype is not the manifest's.
    """
    if not path.is_file():
        raise StoreError(f"shard {path} is missing")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:  # numpy reports a short file as "mmap length is greater..."
        raise StoreError(f"shard {path} is truncated or corrupt: {err}") from err
    expected = (rows,) if width is None else (rows, width)
    if array.shape != expected or array.dtype.newbyteorder("=") != np.dtype(dtype):  # either byte order reads
        raise StoreError(
            f"shard {path} holds {array.dtype}{list(array.shape)}, the manifest says {dtype}{list(expected)}"
        )
    return array


def read_rows(path: Path, rows: int, width: int | None, dtype: str, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a shard as an in-memory array; the mapping is released before returning, so the
    pages read do not stay in this process's resident set."""
    mapped = open_shard(path, rows, width, dtype)
    try:
        return np.array(mapped[start:stop], dtype=np.dtype(dtype))  # native byte order
    finally:
        del mapped
