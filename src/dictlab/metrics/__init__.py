"""Metrics for sparse dictionaries: ground-truth recovery, one-to-one matching, reconstruction, sparsity."""

from dictlab.metrics.chance import random_dictionary_mip, random_directions
from dictlab.metrics.evaluate import Evaluation, evaluate_dictionary, reconstruction_metrics, recovery_probe
from dictlab.metrics.matching import Matching, hungarian_match, mcc, uniqueness
from dictlab.metrics.reconstruction import ReconstructionStats, dead_fraction, firing_counts, fvu, l0
from dictlab.metrics.recovery import (
    BestMatch,
    abs_cosine_matrix,
    best_match,
    best_match_cosines,
    default_taus,
    feature_subset,
    gt_recovery,
    max_inner_product,
    normalize_rows,
    recovery_curve,
)

__all__ = [
    "BestMatch",
    "Evaluation",
    "Matching",
    "ReconstructionStats",
    "abs_cosine_matrix",
    "best_match",
    "best_match_cosines",
    "dead_fraction",
    "default_taus",
    "evaluate_dictionary",
    "feature_subset",
    "firing_counts",
    "fvu",
    "gt_recovery",
    "hungarian_match",
    "l0",
    "max_inner_product",
    "mcc",
    "normalize_rows",
    "random_dictionary_mip",
    "random_directions",
    "reconstruction_metrics",
    "recovery_curve",
    "recovery_probe",
    "uniqueness",
]
