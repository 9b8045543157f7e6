"""The typed record of one bench run: what ``results.json``, ``sweep.json`` and every run's ``metrics.json`` hold."""

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from dictlab.metrics import Evaluation


class RunIdentity(BaseModel):
    """Which run a record describes."""

    model_config = ConfigDict(frozen=True)

    method: str = Field(description="Bench method: an activation name (an SAE), transcoder or crosscoder.")
    anchored: bool = Field(description="Trained with feature anchoring (+FA).")
    kind: str = Field(description="sae, transcoder or crosscoder.")
    activation: str = Field(description="The registered activation of the dictionary.")
    k: int | None = Field(description="Active latents (activations that use k), else None.")
    sparsity_coefficient: float = Field(description="Sparsity coefficient (0 for activations without a penalty).")
    n_anchors: int = Field(description="Anchored ground-truth features (0 for a plain run).")


class Trajectory(BaseModel):
    """Recovery during training, from the probe lines of the training log (one entry per log step)."""

    model_config = ConfigDict(frozen=True)

    step: list[int]
    gt_recovery_dec: list[float]
    mip_dec: list[float]
    mip_enc: list[float]


class BenchRecord(Evaluation, RunIdentity):
    """One bench run: its identity, every metric of :class:`dictlab.metrics.Evaluation`, and its training."""

    steps: int = Field(description="Optimiser steps.")
    wall_s: float = Field(description="Seconds spent on this dictionary's updates.")
    samples_per_s: float = Field(description="Training throughput of this dictionary.")
    eval_s: float = Field(description="Seconds of the final evaluation.")
    run_dir: str = Field(description="The run folder, relative to the bench folder.")
    trajectory: Trajectory

    @property
    def label(self) -> str:
        """'topk' or 'topk +FA'."""
        return f"{self.method} +FA" if self.anchored else self.method


_RECORDS = TypeAdapter(list[BenchRecord])


def read_records(path: Path) -> list[BenchRecord]:
    """The records in ``path`` (a JSON list, e.g. results.json); ValueError naming the file when invalid."""
    try:
        return _RECORDS.validate_json(path.read_bytes())
    except (OSError, ValidationError) as err:
        raise ValueError(f"{path} does not hold bench records: {err}") from err


def read_record(path: Path) -> BenchRecord:
    """The record in ``path`` (a run's metrics.json); ValueError naming the file when invalid."""
    try:
        return BenchRecord.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as err:
        raise ValueError(f"{path} does not hold a bench record: {err}") from err


def record_json(record: BenchRecord) -> str:
    """``record`` as indented JSON (the layout of a run's metrics.json)."""
    return json.dumps(record.model_dump(mode="json"), indent=2) + "\n"


def records_json(records: Sequence[BenchRecord]) -> str:
    """``records`` as indented JSON (the layout of results.json)."""
    return json.dumps([r.model_dump(mode="json") for r in records], indent=2) + "\n"


def check_unique(records: Sequence[BenchRecord]) -> list[BenchRecord]:
    """``records`` as a list; ValueError when a (method, anchored) run appears twice."""
    seen: set[tuple[str, bool]] = set()
    for record in records:
        key = (record.method, record.anchored)
        if key in seen:
            raise ValueError(f"records hold run {record.label} twice; one record per (method, anchored)")
        seen.add(key)
    return list(records)
