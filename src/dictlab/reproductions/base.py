"""What every reproduction is: a typed config, a run that returns typed results with claims, and its outputs.

A reproduction ``run(config, out, echo)`` writes ``results.json`` (its results model), ``results.md`` (tables and
every claim beside the measurement), ``figures/`` and a static ``report.html`` to ``out``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from dictlab.files.atomic import atomic_write_text
from dictlab.report.reproduction_html import write_reproduction_report
from dictlab.reproductions.claims import Claim, Echo, echo_claims
from dictlab.stopwatch import Stopwatch


class ReproductionConfig(BaseModel):
    """Base of every reproduction's config: a seed, and a reduced variant for smoke tests."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    seed: int = Field(default=0, description="Seed of the data, initialisations and training.")

    @classmethod
    def quick(cls, seed: int = 0) -> Self:
        """Reduced sizes (seconds, not minutes); the numbers are not comparable with the full run."""
        return cls(seed=seed)


class ReproductionResults(Protocol):
    """What :func:`finish` needs of a results model (each reproduction's own pydantic model)."""

    @property
    def config(self) -> BaseModel: ...

    @property
    def claims(self) -> list[Claim]: ...

    @property
    def seconds(self) -> dict[str, float]: ...

    def model_dump_json(self, *, indent: int | None = None) -> str: ...


C = TypeVar("C", bound=ReproductionConfig)
R = TypeVar("R", bound=ReproductionResults)


@dataclass(frozen=True)
class Reproduction(Generic[C]):
    """A registered reproduction: ``dictlab reproduce NAME``."""

    name: str
    config: type[C]
    """``config(seed=s)`` is the full run, ``config.quick(s)`` the reduced one."""
    run: Callable[[C, Path, Echo], ReproductionResults]
    """Runs the experiment into a folder and returns its results model."""
    description: str
    """One line for ``dictlab reproduce --help``."""
    single_threaded: bool = True
    """Tiny problems run fastest on one thread; model forwards and SAE training want all cores."""


def finish(name: str, out: Path, results: R, markdown: Callable[[R], str], clock: Stopwatch, echo: Echo) -> None:
    """Record the total time in ``results.seconds``; write results.json, results.md and report.html (tables,
    figures, configuration, environment); print the claims and where they went."""
    results.seconds["total"] = clock.total
    text = markdown(results)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", results.model_dump_json(indent=2) + "\n")
    atomic_write_text(out / "results.md", text.rstrip() + "\n")
    config = results.config.model_dump(mode="json")
    write_reproduction_report(out, name, text, config, config.get("seed"))
    echo_claims(results.claims, echo)
    echo(f"{name} finished in {clock.total:.1f}s; results in {out}")
