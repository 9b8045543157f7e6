"""What made an output folder: the command, the settings that determine its content, and input fingerprints.

Written as ``run.json`` in every output folder. Resuming or re-running into a folder needs the same command,
``config`` and ``inputs``; ``paths`` and ``dictlab_version`` are recorded for people, not compared (a store that
moved is still the same store when its fingerprint matches).
"""

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import dictlab

RUN_FILE = "run.json"
RUN_FORMAT = "dictlab-run"
_WHOLE_FILE_BYTES = 2**30
_SAMPLE_BYTES = 16 * 2**20


class RunIdentity(BaseModel):
    """The identity of one output folder (``run.json``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["dictlab-run"] = RUN_FORMAT
    command: str = Field(description="The dictlab command that writes the folder, e.g. 'train' or 'reproduce theory'.")
    config: dict[str, Any] = Field(description="Every setting that determines the folder's content.")
    inputs: dict[str, str] = Field(default_factory=dict, description="Fingerprint of every input, by name.")
    paths: dict[str, str] = Field(default_factory=dict, description="Where the inputs were (not compared).")
    dictlab_version: str = dictlab.__version__

    def first_difference(self, other: "RunIdentity") -> str | None:
        """``None`` when ``other`` would write the same folder; else the first differing setting, in words."""
        if self.command != other.command:
            return f"it was written by `dictlab {self.command}`, not `dictlab {other.command}`"
        for section in ("config", "inputs"):
            mine, theirs = _flatten(getattr(self, section)), _flatten(getattr(other, section))
            for key in sorted(mine.keys() | theirs.keys()):
                if mine.get(key, _MISSING) != theirs.get(key, _MISSING):
                    label = "input" if section == "inputs" else "setting"
                    before, now = _show(mine.get(key, _MISSING)), _show(theirs.get(key, _MISSING))
                    return f"{label} {key} is {before} there, {now} now"
        return None


class _Missing:
    def __repr__(self) -> str:
        return "absent"


_MISSING = _Missing()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b": leaf} for nested dicts (lists are leaves)."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def json_fingerprint(value: Any) -> str:
    """sha256 of ``value`` as canonical JSON (sorted keys)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's bytes; files over 1 GiB hash their size and their first and last 16 MiB."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as handle:
        if size <= _WHOLE_FILE_BYTES:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
            return "sha256:" + digest.hexdigest()
        digest.update(str(size).encode())
        digest.update(handle.read(_SAMPLE_BYTES))
        handle.seek(size - _SAMPLE_BYTES)
        digest.update(handle.read(_SAMPLE_BYTES))
    return "sha256-sampled:" + digest.hexdigest()


def folder_fingerprints(folder: Path, names: tuple[str, ...], prefix: str = "") -> dict[str, str]:
    """{prefix + name: fingerprint} of the files ``names`` that exist in ``folder``."""
    return {prefix + name: file_fingerprint(folder / name) for name in names if (folder / name).is_file()}
