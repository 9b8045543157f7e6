"""Load an activation matrix [N, D] from a ``.npy``, ``.safetensors`` or ``.pt`` file, with errors naming it."""

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from dictlab.files.tensors import load_tensor_file

SUFFIXES = (".npy", ".safetensors", ".pt", ".pth")


class ActivationFileError(ValueError):
    """An activation file is missing, unreadable or corrupt, or does not hold a finite [N, D] float matrix."""


def load_activations(
    path: str | Path, key: str | None = None, max_rows: int | None = None, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Read an activation matrix as a contiguous CPU tensor [N, D] of ``dtype``.

    Formats, by suffix: ``.npy`` (memory-mapped, so only the first ``max_rows`` rows are read and copied),
    ``.safetensors`` (the file's only tensor, or the one named ``key``; only the needed rows are read) and
    ``.pt``/``.pth`` (``torch.load(weights_only=True)``: a tensor, or a dict of tensors picked as for safetensors).
    A 3-D array [batch, seq, d] is flattened to [batch·seq, d] (row ``b·seq + s``); ``max_rows`` then counts
    flattened rows. Integer and boolean data are converted to ``dtype``; complex, object or string data are
    refused. Raises :class:`ActivationFileError` for a missing, unknown or corrupt file, a shape that is not 2-D or
    3-D, no rows or columns, or rows with NaN/Inf (after conversion to ``dtype``, so overflow counts too).
    """
    path = Path(path)
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise ValueError(f"max_rows must be a positive integer or None, got {max_rows!r}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point dtype, got {dtype}")
    if not path.exists():
        raise ActivationFileError(f"{path} does not exist")
    if not path.is_file():
        raise ActivationFileError(f"{path} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        if key is not None:
            raise ActivationFileError(f"{path}: key {key!r} given, but a .npy file holds a single array")
        data = _load_npy(path, max_rows)
    elif suffix == ".safetensors":
        data = _load_safetensors(path, key, max_rows)
    elif suffix in (".pt", ".pth"):
        data = _load_pt(path, key, max_rows)
    else:
        raise ActivationFileError(f"{path}: unknown extension {path.suffix!r}; expected one of {list(SUFFIXES)}")
    if data.is_complex():
        raise ActivationFileError(f"{path}: complex dtype {data.dtype} cannot be converted to {dtype}")
    try:
        data = data.to(dtype).contiguous()
    except (RuntimeError, TypeError) as err:
        raise ActivationFileError(f"{path}: dtype {data.dtype} cannot be converted to {dtype}: {err}") from err
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise ActivationFileError(f"{path} holds no activations: shape {list(data.shape)}")
    bad = int((~torch.isfinite(data).all(dim=1)).sum())
    if bad:
        raise ActivationFileError(f"{path}: {bad} of {data.shape[0]} rows contain NaN or Inf (as {dtype})")
    return data


def _rows_to_read(path: Path, shape: tuple[int, ...], max_rows: int | None) -> int | None:
    """How many leading entries of the first axis cover ``max_rows`` flattened rows (None: all)."""
    if len(shape) not in (2, 3):
        raise ActivationFileError(f"{path} holds shape {list(shape)}; expected [N, D] or [batch, seq, D]")
    if max_rows is None:
        return None
    per_entry = shape[1] if len(shape) == 3 else 1
    return math.ceil(max_rows / per_entry) if per_entry else None


def _as_matrix(data: Tensor, max_rows: int | None) -> Tensor:
    if data.dim() == 3:
        data = data.reshape(-1, data.shape[-1])
    return data if max_rows is None else data[:max_rows]


def _load_npy(path: Path, max_rows: int | None) -> Tensor:
    try:
        array = np.load(path, mmap_mode="r")
    except (ValueError, OSError, EOFError) as err:
        raise ActivationFileError(f"{path} is corrupt or unreadable as .npy: {err}") from err
    if not isinstance(array, np.ndarray):
        raise ActivationFileError(f"{path} does not hold a single array")
    if array.dtype.kind not in "biuf":
        raise ActivationFileError(f"{path}: dtype {array.dtype} cannot be converted to a float tensor")
    n = _rows_to_read(path, array.shape, max_rows)
    part = array if n is None else array[:n]
    # copy out of the memory map; integers and long doubles go through float64, which torch.from_numpy always takes
    widen = array.dtype.kind in "iu" or array.dtype.itemsize > 8
    native = array.dtype.newbyteorder("=")  # torch reads native byte order only; big-endian files are valid data
    copy = np.array(part, dtype=np.float64 if widen else native)
    return _as_matrix(torch.from_numpy(copy), max_rows)


def _pick(path: Path, names: list[str], key: str | None) -> str:
    if key is not None:
        if key not in names:
            raise ActivationFileError(f"{path} has no tensor {key!r}; it holds {names}")
        return key
    if len(names) != 1:
        what = f"several tensors {names}" if names else "no tensors"
        raise ActivationFileError(f"{path} holds {what}; pass key= to choose one")
    return names[0]


def _load_safetensors(path: Path, key: str | None, max_rows: int | None) -> Tensor:
    try:
        with safe_open(str(path), framework="pt") as handle:
            name = _pick(path, sorted(handle.keys()), key)
            tensor_slice = handle.get_slice(name)
            n = _rows_to_read(path, tuple(tensor_slice.get_shape()), max_rows)
            data = tensor_slice[:] if n is None else tensor_slice[:n]
    except (SafetensorError, OSError, RuntimeError, TypeError, ValueError) as err:
        raise ActivationFileError(f"{path} is corrupt or unreadable as .safetensors: {err}") from err
    return _as_matrix(data, max_rows)


def _load_pt(path: Path, key: str | None, max_rows: int | None) -> Tensor:
    try:  # memory-map zip-format files so that max_rows reads only what it needs
        obj: Any = load_tensor_file(path, "activations", mmap=zipfile.is_zipfile(path))
    except ValueError as err:
        raise ActivationFileError(str(err)) from err
    if isinstance(obj, dict):
        tensors = {str(name): value for name, value in obj.items() if isinstance(value, Tensor)}
        data = tensors[_pick(path, sorted(tensors), key)]
    elif isinstance(obj, Tensor):
        if key is not None:
            raise ActivationFileError(f"{path}: key {key!r} given, but the file holds a single tensor")
        data = obj
    else:
        raise ActivationFileError(f"{path} holds a {type(obj).__name__}; expected a tensor or a dict of tensors")
    _rows_to_read(path, tuple(data.shape), max_rows)
    # clone: detach the result from the memory-mapped file (and from any larger tensor it views)
    return _as_matrix(data, max_rows).clone()
