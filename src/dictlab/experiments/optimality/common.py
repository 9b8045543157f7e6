"""Shared pieces of the optimality reproductions: claims, markdown tables, output files, data helpers."""

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.atomic import atomic_write_text
from dictlab.diagnostics.summary import Check
from dictlab.report.reproduction_html import write_reproduction_report
from dictlab.stopwatch import Stopwatch

Echo = Callable[[str], None]

TOLERANCE = 1e-5
"""Relative tolerance for C1–C3 to count as holding (reference §9)."""


class Claim(BaseModel):
    """One statement of the theory (or an expected number of reference §10) beside what this run measured."""

    claim: str = Field(description="What the theory predicts.")
    expected: str = Field(description="The prediction or ref. §10's number, as text.")
    measured: str = Field(description="What this run measured.")
    holds: bool | None = Field(description="Whether the measurement agrees (None: a number to compare, no verdict).")


def claim(text: str, expected: str, measured: str, holds: bool | None) -> Claim:
    return Claim(claim=text, expected=expected, measured=measured, holds=holds)


def echo_claims(claims: Sequence[Claim], echo: Echo) -> None:
    """One console line per claim: [ok], [NO] or [--] (no verdict)."""
    for c in claims:
        echo(f"  [{'ok' if c.holds else '--' if c.holds is None else 'NO'}] {c.claim}: {c.measured}")


def fmt(value: float | None, digits: int = 3) -> str:
    """Compact number for tables; '–' for None."""
    if value is None:
        return "–"
    return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """GitHub markdown; '|' inside cells is escaped."""

    def cell(value: object) -> str:
        return str(value).replace("\n", " ").replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def claims_table(claims: Sequence[Claim]) -> str:
    verdict = {True: "yes", False: "**NO**", None: "–"}
    return markdown_table(
        ["claim", "theory / ref. §10", "measured", "agrees"],
        [[c.claim, c.expected, c.measured, verdict[c.holds]] for c in claims],
    )


def write_outputs(out: Path, results: BaseModel, markdown: str) -> None:
    """``results.json`` (the pydantic model) and ``results.md`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", results.model_dump_json(indent=2) + "\n")
    atomic_write_text(out / "results.md", markdown.rstrip() + "\n")


def finish(name: str, out: Path, results: Any, markdown: Callable[[Any], str], clock: Stopwatch, echo: Echo) -> None:
    """Record the total time in ``results.seconds``; write results.json, results.md and report.html (tables,
    figures, configuration, environment); print the claims and where they went."""
    results.seconds["total"] = clock.total
    text = markdown(results)
    write_outputs(out, results, text)
    config = results.config.model_dump(mode="json")
    write_reproduction_report(out, name, text, config, config.get("seed"))
    echo_claims(results.claims, echo)
    echo(f"{name} finished in {clock.total:.1f}s; results in {out}")


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread (these problems are tiny; threads only add overhead) and restore the setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def orthonormal_rows(n: int, dim: int, generator: torch.Generator) -> Tensor:
    """``n`` random orthonormal directions in R^dim: [n, dim] float64."""
    if n > dim:
        raise ValueError(f"cannot place {n} orthogonal features in {dim} dimensions")
    Q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return Q.T[:n].contiguous()


def uniform(n: int, low: float, high: float, generator: torch.Generator, *shape: int) -> Tensor:
    """U(low, high) float64 samples of shape [n, *shape]."""
    return low + (high - low) * torch.rand(n, *shape, generator=generator, dtype=torch.float64)


def check_max(checks: Sequence[Check], *names: str) -> float | None:
    """Largest violation over the named checks (None when none of them was evaluated)."""
    values = [c.distribution.max for c in checks if c.name in names and c.distribution.max is not None]
    return max(values) if values else None


def conditions_hold(checks: Sequence[Check], tolerance: float = TOLERANCE) -> bool:
    """C1 (both halves), C2 and C3 (when present) within ``tolerance``."""
    worst = check_max(checks, "C1 active", "C1 inactive", "C2", "C3")
    return worst is not None and worst <= tolerance
