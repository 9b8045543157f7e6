"""``dictlab reproduce theory``: the constructions of Tang et al. (arXiv 2512.05534) §3, built and checked."""

from dictlab.reproductions.base import Reproduction
from dictlab.reproductions.theory.run import TheoryConfig, TheoryResults, run_theory

REPRODUCTION = Reproduction(
    name="theory",
    config=TheoryConfig,
    run=run_theory,
    description="Tang et al. §3 constructions checked: Thm 3.1 surrogate bound, 3.3 recovering minimiser, 3.4 zero "
    "loss without recovery, Ex. 3.5, 3.6 spurious partial minima, 3.8 absorption",
)

__all__ = ["REPRODUCTION", "TheoryConfig", "TheoryResults", "run_theory"]
