"""Save and load a dictionary as a folder: ``cfg.json`` + ``weights.safetensors`` (bit-exact round trip).

Weights larger than ``max_file_bytes`` (5 GB by default, transformers' default shard size) are split into
``weights-00001-of-0000N.safetensors`` files, whole tensors each, listed by ``weights.safetensors.index.json`` in
the Hugging Face layout (``{"metadata": {"total_size": bytes}, "weight_map": {tensor: file}}``).
"""

import json
import re
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

import dictlab
from dictlab.files.atomic import atomic_write_text
from dictlab.files.json_files import read_json_object
from dictlab.files.tensors import save_safetensors
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary
from dictlab.validation import validation_message

CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "weights.safetensors"
INDEX_FILE = "weights.safetensors.index.json"
MAX_WEIGHTS_FILE_BYTES = 5 * 10**9
"""Largest weights file :func:`save_dictionary` writes before splitting the weights into several."""
_SHARD_NAME = re.compile(r"weights-\d{5}-of-\d{5}\.safetensors")


class RunFolderError(ValueError):
    """A run folder is missing a file, or a file in it is corrupt or inconsistent."""


def save_dictionary(
    model: SparseDictionary,
    folder: str | Path,
    metadata: dict[str, Any] | None = None,
    max_file_bytes: int = MAX_WEIGHTS_FILE_BYTES,
) -> Path:
    """Write ``cfg.json`` (architecture, dictlab version, optional metadata) and the weights: one
    ``weights.safetensors``, or, above ``max_file_bytes``, several files and their index.

    Every file is written atomically; weights first, so a ``cfg.json`` never points at missing weights. Weight
    files of an earlier save that this one does not use are removed.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    header = {"format": "pt", "dictlab_version": dictlab.__version__}
    files = _split(tensors, max_file_bytes)
    if len(files) == 1:
        save_safetensors(tensors, folder / WEIGHTS_FILE, header)
        written = {WEIGHTS_FILE}
    else:
        weight_map = {}
        for number, names in enumerate(files, start=1):
            name = f"weights-{number:05d}-of-{len(files):05d}.safetensors"
            save_safetensors({n: tensors[n] for n in names}, folder / name, header)
            weight_map |= dict.fromkeys(names, name)
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
        atomic_write_text(folder / INDEX_FILE, json.dumps(index, indent=2) + "\n")
        written = {INDEX_FILE, *weight_map.values()}
    for stale in (WEIGHTS_FILE, INDEX_FILE, *(p.name for p in folder.glob("weights-*-of-*.safetensors"))):
        if stale not in written:
            (folder / stale).unlink(missing_ok=True)
    cfg = {
        "dictlab_version": dictlab.__version__,
        "dictionary": model.cfg.model_dump(mode="json"),
        "metadata": metadata or {},
    }
    atomic_write_text(folder / CONFIG_FILE, json.dumps(cfg, indent=2) + "\n")
    return folder


def _split(tensors: dict[str, Tensor], max_file_bytes: int) -> list[list[str]]:
    """Tensor names grouped, in name order, into files of at most ``max_file_bytes`` (a larger tensor alone)."""
    files: list[list[str]] = [[]]
    size = 0
    for name in sorted(tensors):
        nbytes = tensors[name].numel() * tensors[name].element_size()
        if files[-1] and size + nbytes > max_file_bytes:
            files.append([])
            size = 0
        files[-1].append(name)
        size += nbytes
    return files


def weight_files(folder: str | Path) -> tuple[str, ...]:
    """Names of the files holding a run folder's weights: the index and its files, else ``weights.safetensors``."""
    folder = Path(folder)
    if not (folder / INDEX_FILE).is_file():
        return (WEIGHTS_FILE,)
    return (INDEX_FILE, *sorted(set(_weight_map(folder).values())))


def _weight_map(folder: Path) -> dict[str, str]:
    index = read_json_object(folder / INDEX_FILE, RunFolderError, "the weights index is missing")
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise RunFolderError(f"{folder / INDEX_FILE} has no 'weight_map' object")
    for tensor, file in weight_map.items():
        if not isinstance(file, str) or not _SHARD_NAME.fullmatch(file):
            raise RunFolderError(
                f"{folder / INDEX_FILE}: tensor {tensor!r} maps to {file!r}, not a "
                "weights-NNNNN-of-NNNNN.safetensors file in the folder"
            )
    return weight_map


def _read_weights(folder: Path, device: str | torch.device) -> dict[str, Tensor]:
    """Every tensor of the folder's weight files (one file, or the files of the index)."""
    names = weight_files(folder)
    paths = [folder / name for name in names if name != INDEX_FILE]
    tensors: dict[str, Tensor] = {}
    for path in paths:
        if not path.is_file():
            raise RunFolderError(f"{path} is missing")
        try:
            part = load_file(str(path), device=str(device))
        except (SafetensorError, OSError, ValueError) as err:
            raise RunFolderError(f"{path} is corrupt or unreadable: {err}") from err
        if tensors.keys() & part.keys():
            raise RunFolderError(f"{path} repeats tensors {sorted(tensors.keys() & part.keys())}")
        tensors |= part
    if INDEX_FILE in names:
        listed = _weight_map(folder)
        if listed.keys() != tensors.keys():
            raise RunFolderError(f"{folder / INDEX_FILE} does not list the tensors its files hold")
    return tensors


def read_run_config(folder: str | Path) -> dict[str, Any]:
    """Parse ``cfg.json`` of a run folder, with errors that name the file."""
    path = Path(folder) / CONFIG_FILE
    cfg = read_json_object(path, RunFolderError, "not a dictlab run folder")
    if "dictionary" not in cfg:
        raise RunFolderError(f"{path} has no 'dictionary' section")
    if not isinstance(cfg.setdefault("metadata", {}), dict):
        raise RunFolderError(f"{path}: 'metadata' must be a JSON object, got {type(cfg['metadata']).__name__}")
    return cfg


def load_dictionary(folder: str | Path, device: str | torch.device = "cpu") -> SparseDictionary:
    """Rebuild the dictionary saved by :func:`save_dictionary`."""
    folder = Path(folder)
    raw = read_run_config(folder)
    try:
        cfg = DictionaryConfig.model_validate(raw["dictionary"])
    except ValidationError as err:
        raise RunFolderError(
            f"{folder / CONFIG_FILE} has an invalid 'dictionary' section: {validation_message(err)}"
        ) from err
    weights_path = folder / (INDEX_FILE if (folder / INDEX_FILE).is_file() else WEIGHTS_FILE)
    tensors = _read_weights(folder, device)
    legacy = "activation.log_threshold"  # JumpReLU runs saved before θ was trained directly
    if legacy in tensors and "activation.threshold" not in tensors:
        tensors["activation.threshold"] = tensors.pop(legacy).exp()
    model = SparseDictionary(cfg).to(device)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    if expected != found:
        raise RunFolderError(f"{weights_path} does not match {CONFIG_FILE}: expected {expected}, found {found}")
    for name, tensor in tensors.items():
        if tensor.dtype != torch.float32:
            raise RunFolderError(f"{weights_path}: tensor {name!r} is {tensor.dtype}; dictlab saves float32 weights")
        if not torch.isfinite(tensor).all():
            raise RunFolderError(f"{weights_path}: tensor {name!r} contains NaN or Inf")
    model.load_state_dict(tensors)
    return model
