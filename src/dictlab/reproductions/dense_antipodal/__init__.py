"""``dictlab reproduce dense-antipodal``: a dense signed direction becomes an antipodal pair split at the median."""

from dictlab.reproductions.base import Reproduction
from dictlab.reproductions.dense_antipodal.run import DenseAntipodalConfig, DenseAntipodalResults, run_dense_antipodal

REPRODUCTION = Reproduction(
    name="dense-antipodal",
    config=DenseAntipodalConfig,
    run=run_dense_antipodal,
    description="dense signed direction → antipodal pair split at the median (after Dorrell, arXiv 2606.02385)",
)

__all__ = ["REPRODUCTION", "DenseAntipodalConfig", "DenseAntipodalResults", "run_dense_antipodal"]
