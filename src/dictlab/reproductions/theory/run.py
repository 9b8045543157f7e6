"""``dictlab reproduce theory``: every construction of Tang et al. §3 built and checked (see :mod:`dictlab.theory`)."""

from pathlib import Path

from pydantic import BaseModel, Field

from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.claims import Claim, Echo, claim
from dictlab.reproductions.theory.report import plot_approximation, theory_markdown
from dictlab.stopwatch import Stopwatch
from dictlab.theory.checks import TheoremCheck, all_checks


class TheoryConfig(ReproductionConfig):
    """Seed and Monte Carlo size of the checks."""

    n_samples: int = Field(default=400_000, gt=0, description="Monte Carlo samples per sparsity for Theorem 3.1.")

    @classmethod
    def quick(cls, seed: int = 0) -> "TheoryConfig":
        return cls(seed=seed, n_samples=50_000)


class TheoryResults(BaseModel):
    config: TheoryConfig
    checks: list[TheoremCheck]
    claims: list[Claim] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


def run_theory(config: TheoryConfig, out: Path, echo: Echo) -> TheoryResults:
    """Build and check every construction; write results, claims and the Theorem 3.1 figure to ``out``."""
    clock = Stopwatch()
    checks = all_checks(config.seed, n_samples=config.n_samples)
    results = TheoryResults(
        config=config,
        checks=checks,
        claims=[claim(c.name + ": " + c.statement, "holds", c.measured, c.passed) for c in checks],
    )
    plot_approximation(next(c for c in checks if c.name == "Theorem 3.1"), out / "figures" / "theorem_3_1.png")
    finish("theory", out, results, theory_markdown, clock, echo)
    return results
