"""``dictlab reproduce hierarchy``: planted parent/child features against the optimality conditions of (P_K)."""

from dictlab.reproductions.base import Reproduction
from dictlab.reproductions.hierarchy.run import HierarchyConfig, HierarchyResults, run_hierarchy

REPRODUCTION = Reproduction(
    name="hierarchy",
    config=HierarchyConfig,
    run=run_hierarchy,
    description="planted parent/child features: GT flagged by the hull test, the solver tilts the child "
    "(after Dorrell, arXiv 2606.02385)",
)

__all__ = ["REPRODUCTION", "HierarchyConfig", "HierarchyResults", "run_hierarchy"]
