"""Numerical reproductions of the optimality theory of (P_K) (reference §10): hierarchy, wide limit, antipodal."""

from dictlab.experiments.optimality.dense_antipodal import DenseAntipodalConfig, DenseAntipodalResults
from dictlab.experiments.optimality.hierarchy import HierarchyConfig, HierarchyData, HierarchyResults
from dictlab.experiments.optimality.wide_limit import WideLimitConfig, WideLimitResults, WideSweep

__all__ = [
    "DenseAntipodalConfig",
    "DenseAntipodalResults",
    "HierarchyConfig",
    "HierarchyData",
    "HierarchyResults",
    "WideLimitConfig",
    "WideLimitResults",
    "WideSweep",
]
