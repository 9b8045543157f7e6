"""Checkpoints of latent-parallel runs: torch's distributed checkpoint (DCP), reshardable to any layout.

``workdir/checkpoint.json`` (written atomically, last) names the current folder ``checkpoint-<step>/``, which holds
one safetensors file per rank (DCP's HuggingFace storage: tensors and their shard offsets in the safetensors
headers, no pickle anywhere) and ``trainer_state.json`` (every non-tensor value). Latent-indexed tensors are saved
as DTensors sharded over the mesh's ``tp`` dimension, replicated ones once; loading into DTensors of another
``tp``, or into whole tensors in one process, reads exactly the slices each process needs.
"""

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.hf_storage import HuggingFaceStorageReader, HuggingFaceStorageWriter
from torch.distributed.checkpoint.state_dict_loader import load as dcp_load
from torch.distributed.checkpoint.state_dict_saver import save as dcp_save
from torch.distributed.tensor import DTensor, Replicate, Shard

from dictlab.distributed.mesh import Mesh
from dictlab.files.atomic import atomic_write_text
from dictlab.files.json_files import read_json_object

POINTER_FILE = "checkpoint.json"
STATE_FILE = "trainer_state.json"
FOLDER_PREFIX = "checkpoint-"


@dataclass(frozen=True)
class Entry:
    """One tensor of the checkpoint: this process's part and the dimension along which shards split it."""

    local: Tensor
    latent_dim: int | None
    """None: replicated (the same on every process)."""


def _distributed(mesh: Mesh, entry: Entry) -> Tensor:
    if mesh.grid is None:
        return entry.local
    placement = Replicate() if entry.latent_dim is None else Shard(entry.latent_dim)
    return DTensor.from_local(entry.local, mesh.grid, [Replicate(), placement], run_check=False)


def _barrier(mesh: Mesh) -> None:
    if mesh.all.size > 1:
        dist.barrier(group=mesh.all.handle)


def save_sharded(workdir: Path, step: int, entries: dict[str, Entry], state: dict[str, Any], mesh: Mesh) -> None:
    """Write the checkpoint of ``step`` (collective over ``mesh.all``); the previous one stays valid until the
    pointer names the new folder, then it is removed."""
    folder = workdir / f"{FOLDER_PREFIX}{step}"
    if mesh.all.rank == 0:
        shutil.rmtree(folder, ignore_errors=True)  # a partial write of this step by a killed run
        folder.mkdir(parents=True)
    _barrier(mesh)
    tensors = {name: _distributed(mesh, entry) for name, entry in entries.items()}
    dcp_save(tensors, storage_writer=HuggingFaceStorageWriter(str(folder), save_distributed=True))
    if mesh.all.rank == 0:
        atomic_write_text(folder / STATE_FILE, json.dumps(state) + "\n")
        atomic_write_text(workdir / POINTER_FILE, json.dumps({"folder": folder.name, "step": step}) + "\n")
        for old in workdir.glob(f"{FOLDER_PREFIX}*"):
            if old.is_dir() and old.name != folder.name:
                shutil.rmtree(old, ignore_errors=True)
    _barrier(mesh)


def current_folder(workdir: Path) -> Path | None:
    """The folder ``checkpoint.json`` names, or None when there is no sharded checkpoint."""
    pointer = workdir / POINTER_FILE
    if not pointer.exists():
        return None
    record = read_json_object(pointer, ValueError, "the sharded checkpoint has no pointer")
    folder = workdir / str(record.get("folder", ""))
    if not folder.name.startswith(FOLDER_PREFIX) or not (folder / STATE_FILE).is_file():
        raise ValueError(f"{pointer} names {folder}, which is not a complete checkpoint folder")
    return folder


def load_sharded(folder: Path, entries: dict[str, Entry], mesh: Mesh) -> dict[str, Any]:
    """Fill every entry's tensor in place from ``folder`` (collective over ``mesh.all``; any saved layout) and
    return the non-tensor state."""
    tensors = {name: _distributed(mesh, entry) for name, entry in entries.items()}
    try:
        with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
            warnings.simplefilter("ignore", UserWarning)
            dcp_load(tensors, storage_reader=HuggingFaceStorageReader(str(folder)))
    except (RuntimeError, KeyError, ValueError, CheckpointException) as err:
        raise ValueError(f"checkpoint {folder} does not fit this run: {err}") from err
    for name, tensor in tensors.items():
        if isinstance(tensor, DTensor) and tensor.to_local().data_ptr() != entries[name].local.data_ptr():
            entries[name].local.copy_(tensor.to_local())
    return read_json_object(folder / STATE_FILE, ValueError, "the checkpoint was not completed")


def remove_sharded(workdir: Path) -> None:
    """Delete the sharded checkpoint (pointer first, so no reader sees a half-removed one)."""
    (workdir / POINTER_FILE).unlink(missing_ok=True)
    for old in workdir.glob(f"{FOLDER_PREFIX}*"):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def generator_state(generator: torch.Generator) -> list[int]:
    """A CPU generator's state as JSON-ready bytes."""
    return generator.get_state().tolist()


def set_generator_state(generator: torch.Generator, state: list[int]) -> None:
    generator.set_state(torch.tensor(state, dtype=torch.uint8))
