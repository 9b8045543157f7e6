"""Markdown tables and compact number formats shared by every results.md and summary dictlab writes."""

import math
from collections.abc import Sequence

MISSING = "–"
"""What a missing value renders as."""


def markdown_table(headers: Sequence[object], rows: Sequence[Sequence[object]], *, literal: bool = False) -> str:
    """A GitHub-flavoured markdown table; newlines and '|' inside cells are escaped.

    With ``literal`` every ``*`` is escaped too, so a cell such as ``0.00*`` shows its star instead of starting
    emphasis (otherwise cells may carry markdown, e.g. a bold ``**NO**`` verdict).
    """

    def cell(value: object) -> str:
        text = str(value).replace("\n", " ").replace("|", "\\|")
        return text.replace("*", "\\*") if literal else text

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 3) -> str:
    """A compact number: ``digits`` significant digits, and whole numbers (not exponents) for values that have
    more integer digits than that; '–' for None."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"


def pct(value: float | None, digits: int = 1) -> str:
    """A [0, 1] fraction as a percentage with a unit, e.g. '82.8 %'; '–' for None."""
    return MISSING if value is None else f"{100 * value:.{digits}f} %"
