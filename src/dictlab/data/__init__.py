"""Synthetic data with known ground truth: the Linear Representation Bench (LRB) generator."""

from dictlab.data.activation_files import ActivationFileError, load_activations
from dictlab.data.feature_matrix import (
    PGDReport,
    interference_loss,
    interference_pgd,
    interference_stats,
    welch_bound,
)
from dictlab.data.ground_truth import GroundTruth
from dictlab.data.lrb import (
    SPLITS,
    VIEW_KINDS,
    DataView,
    LRBConfig,
    LRBDataset,
    derive_seed,
    generate_lrb,
    planted_hierarchy,
    sample_codes,
)

__all__ = [
    "SPLITS",
    "VIEW_KINDS",
    "ActivationFileError",
    "DataView",
    "GroundTruth",
    "LRBConfig",
    "LRBDataset",
    "PGDReport",
    "derive_seed",
    "generate_lrb",
    "interference_loss",
    "interference_pgd",
    "interference_stats",
    "load_activations",
    "planted_hierarchy",
    "sample_codes",
    "welch_bound",
]
