"""``dictlab reproduce NAME``: the registry of reproductions and the one way to run them.

Each reproduction is a package ``dictlab.reproductions.<name>`` with ``run.py`` (config, results, the run) and
``report.py`` (claims, results.md, figures), exposing a :class:`~dictlab.reproductions.base.Reproduction` as
``REPRODUCTION``; listing it in :data:`REPRODUCTIONS` makes it a ``dictlab reproduce`` choice.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from dictlab.outputs import RunIdentity, claim_output
from dictlab.reproductions import (
    ablations,
    absorption,
    dense_antipodal,
    hierarchy,
    real_anchoring,
    resampling,
    table1,
    theory,
    wide_limit,
)
from dictlab.reproductions.base import Reproduction, ReproductionResults
from dictlab.reproductions.claims import Echo

REPRODUCTIONS: dict[str, Reproduction[Any]] = {
    entry.name: entry
    for entry in (
        hierarchy.REPRODUCTION,
        wide_limit.REPRODUCTION,
        dense_antipodal.REPRODUCTION,
        theory.REPRODUCTION,
        table1.REPRODUCTION,
        ablations.REPRODUCTION,
        resampling.REPRODUCTION,
        real_anchoring.REPRODUCTION,
        absorption.REPRODUCTION,
    )
}


class ReproduceRequest(BaseModel):
    """Options shared by every reproduction (the CLI options of ``dictlab reproduce``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    out: Path | None = Field(default=None, description="Output folder. Default: runs/reproduce/NAME.")
    seed: int = Field(default=0, description="Seed of the data, initialisations and training.")
    quick: bool = Field(
        default=False, description="Reduced sizes for smoke tests (numbers not comparable with a full run)."
    )
    preset: str | None = Field(
        default=None, description="Bench preset of the bench-based reproductions (ablations, table1)."
    )
    sweep: bool = Field(
        default=True,
        description="table1: also run the preset's sparsity-coefficient sweep (ReLU, JumpReLU); --no-sweep leaves "
        "it out.",
    )
    overwrite: bool = Field(
        default=False, description="Replace the results in --out if another command or configuration wrote them."
    )


def reproduction_help() -> str:
    """One line per reproduction: its name and description."""
    return "\n".join(f"{name}: {entry.description}" for name, entry in REPRODUCTIONS.items())


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread (for tiny problems threads only add overhead) and restore the setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_reproduction(name: str, request: ReproduceRequest, echo: Echo = print) -> ReproductionResults:
    """Run the reproduction ``name`` into ``request.out`` (default ``runs/reproduce/<name>``)."""
    if name not in REPRODUCTIONS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(REPRODUCTIONS)}")
    out = request.out if request.out is not None else Path("runs") / "reproduce" / name
    entry = REPRODUCTIONS[name]
    config = entry.config.quick(request.seed) if request.quick else entry.config(seed=request.seed)
    if request.preset is not None:
        if "preset" not in entry.config.model_fields:
            raise ValueError(f"--preset applies to the bench-based reproductions, not to {name!r}")
        config = config.model_validate(config.model_dump() | {"preset": request.preset})
    if not request.sweep:
        if "sweep" not in entry.config.model_fields:
            raise ValueError(f"--no-sweep applies to the table1 reproduction, not to {name!r}")
        config = config.model_validate(config.model_dump() | {"sweep": False})
    identity = RunIdentity(command=f"reproduce {name}", config=config.model_dump(mode="json"))
    with claim_output(out, identity, request.overwrite, _has_progress):
        if not entry.single_threaded:
            return entry.run(config, out, echo)
        with single_thread():
            return entry.run(config, out, echo)


def _has_progress(out: Path) -> bool:
    """Whether a failed reproduction leaves training a rerun would resume from."""
    return any(out.rglob("checkpoint.pt")) or any(out.rglob("metrics.json"))
