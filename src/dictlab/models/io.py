"""Save and load a dictionary as a folder: ``cfg.json`` + ``weights.safetensors`` (bit-exact round trip)."""

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file

import dictlab
from dictlab.files.atomic import atomic_write_text
from dictlab.files.json_files import read_json_object
from dictlab.files.tensors import save_safetensors
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary
from dictlab.validation import validation_message

CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "weights.safetensors"


class RunFolderError(ValueError):
    """A run folder is missing a file, or a file in it is corrupt or inconsistent."""


def save_dictionary(model: SparseDictionary, folder: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write ``cfg.json`` (architecture, dictlab version, optional metadata) and ``weights.safetensors``.

    Both files are written atomically; weights first, so a ``cfg.json`` never points at missing weights.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_safetensors(tensors, folder / WEIGHTS_FILE, {"format": "pt", "dictlab_version": dictlab.__version__})
    cfg = {
        "dictlab_version": dictlab.__version__,
        "dictionary": model.cfg.model_dump(mode="json"),
        "metadata": metadata or {},
    }
    atomic_write_text(folder / CONFIG_FILE, json.dumps(cfg, indent=2) + "\n")
    return folder


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
    weights_path = folder / WEIGHTS_FILE
    if not weights_path.is_file():
        raise RunFolderError(f"{weights_path} is missing")
    try:
        tensors = load_file(str(weights_path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise RunFolderError(f"{weights_path} is corrupt or unreadable: {err}") from err
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
