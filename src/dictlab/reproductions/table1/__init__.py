"""``dictlab reproduce table1``: the bench's Table 1 with its claims checked (Tang et al., arXiv 2512.05534)."""

from dictlab.reproductions.base import Reproduction
from dictlab.reproductions.table1.run import Table1Config, Table1Results, run_table1

REPRODUCTION = Reproduction(
    name="table1",
    config=Table1Config,
    run=run_table1,
    description="the bench's Table 1 (paper preset on a GPU, default preset on a CPU) with its claims checked",
    single_threaded=False,
)

__all__ = ["REPRODUCTION", "Table1Config", "Table1Results", "run_table1"]
