"""Experiment tracking: the trainer's metric lines also sent to TensorBoard scalars or a Weights & Biases run.

A tracker receives exactly the host-side records the JSONL log gets, at the same steps, so it reads nothing more
from the training device. Each metric of a record becomes the scalar ``<member>/<metric>``; ``step`` and
``member`` name it, non-numeric values are skipped. The packages come with the ``tracking`` extra and are imported
only when a tracker is opened.
"""

import importlib
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from types import ModuleType
from typing import Any

from dictlab.files.atomic import atomic_write_text
from dictlab.training.config import Tracking, TrainConfig

INSTALL = 'pip install -e ".[tracking]" -c constraints.txt'
TENSORBOARD_DIR = "tensorboard"
WANDB_ID_FILE = "wandb_run_id"
"""The W&B run id of a workdir, kept so that a resumed training continues the same run."""


class MetricsTracker(ABC):
    """Receives the metric records of every log step."""

    @abstractmethod
    def log(self, step: int, records: list[dict[str, Any]]) -> None:
        """Record one log step's lines (one per member, as written to the JSONL log)."""

    @abstractmethod
    def close(self) -> None:
        """Flush and release the tracker."""


def scalars(records: list[dict[str, Any]]) -> dict[str, float]:
    """``<member>/<metric>`` → value for every numeric metric of ``records``."""
    return {
        f"{record['member']}/{key}": float(value)
        for record in records
        for key, value in record.items()
        if key not in ("step", "member") and isinstance(value, int | float) and not isinstance(value, bool)
    }


class TensorBoardTracker(MetricsTracker):
    """Scalars in TensorBoard event files under ``logdir``; events from ``first_step`` on that an earlier, killed
    session wrote are purged (TensorBoard stores scalars as float32)."""

    def __init__(self, logdir: Path, first_step: int) -> None:
        _package("tensorboard")
        summary_writer = importlib.import_module("torch.utils.tensorboard").SummaryWriter
        self._writer = summary_writer(log_dir=str(logdir), purge_step=first_step)

    def log(self, step: int, records: list[dict[str, Any]]) -> None:
        for tag, value in scalars(records).items():
            self._writer.add_scalar(tag, value, global_step=step)

    def close(self) -> None:
        self._writer.close()


class WandbTracker(MetricsTracker):
    """A W&B run written under ``workdir/wandb``; its id is kept in ``workdir/wandb_run_id``, so every session of a
    resumed training continues the same run."""

    def __init__(self, workdir: Path, config: TrainConfig, run_config: dict[str, Any]) -> None:
        wandb = _package("wandb")
        self._run = wandb.init(
            dir=str(workdir),
            project=config.wandb_project,
            name=config.wandb_name or "/".join(workdir.resolve().parts[-2:]),
            mode=config.wandb_mode,
            id=wandb_run_id(workdir),
            resume="allow",
            reinit="create_new",
            config=run_config,
        )

    def log(self, step: int, records: list[dict[str, Any]]) -> None:
        self._run.log(scalars(records), step=step)

    def close(self) -> None:
        self._run.finish()


def wandb_run_id(workdir: Path) -> str:
    """The W&B run id of ``workdir``: the one kept there, else a new one (then kept)."""
    path = workdir / WANDB_ID_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    run_id = uuid.uuid4().hex[:12]
    atomic_write_text(path, run_id + "\n")
    return run_id


def require(tracking: Tracking) -> None:
    """Raise ImportError, naming the package and the install command, if ``tracking``'s package is missing."""
    if tracking != "none":
        _package(tracking)


def _package(name: Tracking) -> ModuleType:
    """The package of the same name as the tracking that uses it."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"tracking={name!r} needs the {name} package: {INSTALL}") from err


def open_tracker(
    config: TrainConfig, workdir: Path, first_step: int, run_config: dict[str, Any]
) -> MetricsTracker | None:
    """The tracker ``config.tracking`` asks for (None for "none"), writing under ``workdir``; ``first_step`` is the
    first step this session may log, ``run_config`` what W&B records as the run's config."""
    if config.tracking == "tensorboard":
        return TensorBoardTracker(workdir / TENSORBOARD_DIR, first_step)
    if config.tracking == "wandb":
        return WandbTracker(workdir, config, run_config)
    return None
