"""``dictlab reproduce ablations``: Tang et al.'s Tables 4–7 (arXiv 2512.05534) as sweeps of the bench."""

from dictlab.reproductions.ablations.run import AblationsConfig, AblationsResults, run_ablations
from dictlab.reproductions.base import Reproduction

REPRODUCTION = Reproduction(
    name="ablations",
    config=AblationsConfig,
    run=run_ablations,
    description="Tables 4–7 as bench sweeps (superposition ratio, interference M, 1 − S, TopK k) beside the paper's "
    "numbers",
    single_threaded=False,
)

__all__ = ["REPRODUCTION", "AblationsConfig", "AblationsResults", "run_ablations"]
