"""``dictlab reproduce absorption``: the label-based absorption metric against the label-free hierarchy flags on
the bench with planted hierarchies."""

from dictlab.reproductions.absorption.run import AbsorptionBenchConfig, AbsorptionBenchResults, run_absorption_bench
from dictlab.reproductions.base import Reproduction

REPRODUCTION = Reproduction(
    name="absorption",
    config=AbsorptionBenchConfig,
    run=run_absorption_bench,
    description="planted hierarchies on the bench: label-based absorption (arXiv 2409.14507) against dictlab "
    "diagnose's label-free nested and tilted pairs",
)

__all__ = ["REPRODUCTION", "AbsorptionBenchConfig", "AbsorptionBenchResults", "run_absorption_bench"]
