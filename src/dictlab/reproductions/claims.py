"""Claims: one statement of a paper or of the theory, beside what a run measured and a verdict."""

from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

from dictlab.report.markdown import markdown_table

Echo = Callable[[str], None]
"""Where a reproduction reports progress (``print``, ``click.echo``, a logger)."""


class Claim(BaseModel):
    """One statement (a prediction of the theory or a paper's number) beside what this run measured."""

    claim: str = Field(description="What the theory or the paper says.")
    expected: str = Field(description="The prediction or the published number, as text.")
    measured: str = Field(description="What this run measured.")
    holds: bool | None = Field(description="Whether the measurement agrees (None: a number to compare, no verdict).")


def claim(text: str, expected: str, measured: str, holds: bool | None) -> Claim:
    """A :class:`Claim` from positional parts."""
    return Claim(claim=text, expected=expected, measured=measured, holds=holds)


def echo_claims(claims: Sequence[Claim], echo: Echo) -> None:
    """One console line per claim: [ok], [NO] or [--] (no verdict)."""
    for c in claims:
        echo(f"  [{'ok' if c.holds else '--' if c.holds is None else 'NO'}] {c.claim}: {c.measured}")


def claims_table(claims: Sequence[Claim]) -> str:
    """The claims as a markdown table with a verdict column."""
    verdict = {True: "yes", False: "**NO**", None: "–"}
    return markdown_table(
        ["claim", "expected", "measured", "agrees"],
        [[c.claim, c.expected, c.measured, verdict[c.holds]] for c in claims],
    )
