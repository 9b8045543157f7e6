"""The manifest of an activation store: what was captured, where the committed shards are, running statistics.

Layout of a store folder::

    manifest.json                 this manifest (rewritten atomically after every committed shard)
    labels.npy                    int64 [n_texts]: class label of every corpus text (label names in the manifest)
    text_index/shard-000000.npy   int64 [rows]: corpus index of the text each row came from
    tokens/shard-000000.npy       int32 [m]: the model input of the shard's texts (see dictlab.data.store.tokens)
    token_index/shard-000000.npy  int64 [rows]: where each row's token sits in tokens/
    <module>/shard-000000.npy     [rows, width] activations of one module (float32 or float16)

A shard file exists on disk before the manifest lists it; files the manifest does not list are leftovers of an
interrupted commit and are deleted when the capture resumes.
"""

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dictlab.files.atomic import atomic_write_text
from dictlab.files.json_files import read_json_object
from dictlab.files.names import check_plain_name
from dictlab.validation import validation_message

MANIFEST_FILE = "manifest.json"
LABELS_FILE = "labels.npy"
TEXT_INDEX_DIR = "text_index"
TOKENS_DIR = "tokens"
TOKEN_INDEX_DIR = "token_index"
RESERVED_FOLDERS = (TEXT_INDEX_DIR, TOKENS_DIR, TOKEN_INDEX_DIR)
STORE_FORMAT = "dictlab-activation-store"
MAX_WIDTH = 2**20
"""Widest activation a store may hold (a size field bounded before anything is allocated)."""
StoreDtype = Literal["float32", "float16"]


class StoreError(ValueError):
    """An activation store is missing, corrupt, truncated or inconsistent; the message names the file."""


class RunningStats(BaseModel):
    """Sums over every committed row of one module, from which mean and norm statistics follow."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    rows: int = Field(default=0, ge=0)
    sum: list[float] = Field(default_factory=list, description="Σ x over rows (float64), [width].")
    norm_sum: float = Field(default=0.0, ge=0)
    norm_sq_sum: float = Field(default=0.0, ge=0)
    norm_max: float = Field(default=0.0, ge=0)

    @classmethod
    def of(cls, rows: np.ndarray) -> "RunningStats":
        """The sums of one [n, width] block."""
        block = rows.astype(np.float64, copy=False)
        norms = np.linalg.norm(block, axis=1)
        return cls(
            rows=int(block.shape[0]),
            sum=block.sum(axis=0).tolist(),
            norm_sum=float(norms.sum()),
            norm_sq_sum=float((norms**2).sum()),
            norm_max=float(norms.max(initial=0.0)),
        )

    def merge(self, other: "RunningStats") -> None:
        """Add the sums of ``other`` (blocks merged in the same order give the same bits wherever computed)."""
        self.sum = (np.asarray(self.sum) + np.asarray(other.sum)).tolist() if self.sum else list(other.sum)
        self.rows += other.rows
        self.norm_sum += other.norm_sum
        self.norm_sq_sum += other.norm_sq_sum
        self.norm_max = max(self.norm_max, other.norm_max)

    def add(self, rows: np.ndarray) -> None:
        """Accumulate a [n, width] block."""
        self.merge(RunningStats.of(rows))

    @property
    def mean(self) -> np.ndarray:
        """Mean activation, [width]."""
        return np.asarray(self.sum) / max(self.rows, 1)

    @property
    def mean_norm(self) -> float:
        return self.norm_sum / max(self.rows, 1)

    @property
    def rms_norm(self) -> float:
        """sqrt(E‖x‖²): the scale that activation normalisation divides by."""
        return math.sqrt(self.norm_sq_sum / max(self.rows, 1))

    def summary(self) -> dict[str, float]:
        return {
            "rows": self.rows,
            "mean_norm": self.mean_norm,
            "rms_norm": self.rms_norm,
            "max_norm": self.norm_max,
            "norm_of_mean": float(np.linalg.norm(self.mean)),
        }


class ShardEntry(BaseModel):
    """One committed shard: its file name (the same in every module folder) and row count."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    file: str = Field(description="Plain file name (no folders), e.g. shard-000000.npy.")
    rows: int = Field(ge=0)

    @field_validator("file")
    @classmethod
    def _plain(cls, file: str) -> str:
        check_plain_name(file, "shard file")
        if not file.endswith(".npy"):
            raise ValueError(f"shard file {file!r} must be a .npy file")
        return file


class ModuleEntry(BaseModel):
    """One captured module."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(description="Module name in the model, e.g. model.layers.15.")
    folder: str = Field(description="Sub-folder of the store holding this module's shards (a plain name).")
    width: int = Field(gt=0, le=MAX_WIDTH)
    stats: RunningStats = Field(default_factory=RunningStats)

    @field_validator("folder")
    @classmethod
    def _plain(cls, folder: str) -> str:
        check_plain_name(folder, "module folder")
        if folder in RESERVED_FOLDERS:
            raise ValueError(f"module folder {folder!r} is reserved for the store's row index files")
        return folder


class StoreManifest(BaseModel):
    """Everything a reader needs, and the cursor a resumed capture continues from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    format: str = STORE_FORMAT
    version: int = 1
    model: str = Field(description="Model alias or folder the activations came from.")
    dtype: StoreDtype = "float32"
    modules: list[ModuleEntry]
    label_names: list[str] = Field(default_factory=list)
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Capture settings; a resumed capture must match them."
    )
    shards: list[ShardEntry] = Field(default_factory=list)
    batches_done: int = Field(default=0, description="Forward batches whose rows are all in committed shards.")
    texts_done: int = 0
    tokens_seen: int = Field(
        default=0, description="Kept positions seen by the committed batches (= rows unless pooled)."
    )
    complete: bool = False
    tokens: bool = Field(
        default=False,
        description="Whether every shard has token files (tokens/, token_index/); stores captured before "
        "dictlab kept token ids have none.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> "StoreManifest":
        folders = [m.folder for m in self.modules]
        if not self.modules or len(set(folders)) != len(folders):
            raise ValueError(f"modules must be a non-empty list with distinct folders, got {folders}")
        files = [s.file for s in self.shards]
        if len(set(files)) != len(files):
            raise ValueError("shard file names must be distinct")
        for entry in self.modules:
            if entry.stats.rows not in (0, self.rows) or len(entry.stats.sum) not in (0, entry.width):
                raise ValueError(f"module {entry.name!r}: statistics do not match the shards' rows or its width")
        return self

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def module(self, name: str | None = None) -> ModuleEntry:
        """The entry of module ``name`` (default: the only module)."""
        if name is None:
            if len(self.modules) != 1:
                raise StoreError(f"the store holds modules {[m.name for m in self.modules]}: choose one")
            return self.modules[0]
        for entry in self.modules:
            if name in (entry.name, entry.folder):
                return entry
        raise StoreError(f"the store holds no module {name!r}; it has {[m.name for m in self.modules]}")


def module_folder(name: str) -> str:
    """File-system-safe folder name for a module name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def shard_name(index: int) -> str:
    return f"shard-{index:06d}.npy"


def read_manifest(store: str | Path) -> StoreManifest:
    """Parse and validate ``store/manifest.json``."""
    path = Path(store) / MANIFEST_FILE
    raw = read_json_object(path, StoreError, "not an activation store (run dictlab capture first)")
    if raw.get("format") != STORE_FORMAT:
        raise StoreError(f"{path} is not a dictlab activation-store manifest (format {raw.get('format')!r})")
    try:
        return StoreManifest.model_validate(raw)
    except ValidationError as err:
        raise StoreError(f"{path} is invalid: {validation_message(err)}") from err


def write_manifest(store: str | Path, manifest: StoreManifest) -> None:
    """Atomically replace ``store/manifest.json``."""
    atomic_write_text(Path(store) / MANIFEST_FILE, manifest.model_dump_json(indent=1) + "\n")
