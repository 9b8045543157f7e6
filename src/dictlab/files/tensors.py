"""Tensor files: safetensors written byte-for-byte reproducibly, and ``torch.load`` that never runs code."""

import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from dictlab.files.atomic import atomic_path


def save_safetensors(tensors: dict[str, Tensor], path: str | os.PathLike[str], metadata: dict[str, str]) -> None:
    """Write ``tensors`` to ``path`` atomically with ``metadata``; equal inputs give byte-identical files.

    safetensors writes tensors in a fixed order but its metadata in hash order, which differs between processes;
    the header's metadata keys are sorted in place afterwards (same length, so no data moves).
    """
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        _sort_metadata(tmp)


def _sort_metadata(path: Path) -> None:
    with open(path, "r+b") as handle:
        size = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(size))
        meta = header.pop("__metadata__", None)
        ordered = ({"__metadata__": dict(sorted(meta.items()))} if meta else {}) | header
        text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > size:  # never expected: same keys and values; leave the valid file as it is
            return
        handle.seek(8)
        handle.write(text.ljust(size, b" "))


class UnsafeFileError(ValueError):
    """A file would need unpickling of arbitrary objects (which can run code) to be read."""


def load_tensor_file(path: Path, what: str, map_location: str | torch.device = "cpu", mmap: bool = False) -> Any:
    """``torch.load`` restricted to tensors and plain containers (``weights_only``), with errors naming ``path``.

    A file holding other pickled objects is refused; the message does not suggest lifting the restriction.
    """
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # garbage bytes, not a refused object
            raise ValueError(f"{path} is corrupt or unreadable ({what}): not a torch file") from err
        raise UnsafeFileError(
            f"{path} holds pickled Python objects other than tensors ({what}); dictlab reads only tensors and "
            "plain containers from .pt files, because unpickling anything else can run code from the file"
        ) from err
    except Exception as err:  # the unpickler raises almost any error type (IndexError, KeyError, ...) on garbage
        raise ValueError(f"{path} is corrupt or unreadable ({what}): {type(err).__name__}") from err
