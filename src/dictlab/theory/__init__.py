"""Executable statements of Tang et al.'s SDL theory (§3): the surrogate loss L̃, activation patterns, and the
constructions of Theorems 3.3, 3.4, 3.6 and 3.8 and Example 3.5, each with a check that can fail.

Orientation: dictlab's ``W_enc: [n_p, n_q]`` (= the paper's W_Eᵀ) and ``W_dec: [n_q, n_r]`` (= W_Dᵀ); ground-truth
features are rows, ``features_in: [n, n_p]`` (w_p^d) and ``features_out: [n, n_r]`` (w_r^d). No biases, as in the
theory.
"""

from dictlab.theory.constructions import (
    Dictionary,
    absorb_child,
    example_3_5,
    partial_minimum,
    recovering_minimizer,
    zero_loss_mixture,
)
from dictlab.theory.patterns import NotRealizable, activation_pattern, is_partition, realize_pattern
from dictlab.theory.surrogate import Sigma, single_feature_weights, surrogate_gradients, surrogate_loss

__all__ = [
    "Dictionary",
    "NotRealizable",
    "Sigma",
    "absorb_child",
    "activation_pattern",
    "example_3_5",
    "is_partition",
    "partial_minimum",
    "realize_pattern",
    "recovering_minimizer",
    "single_feature_weights",
    "surrogate_gradients",
    "surrogate_loss",
    "zero_loss_mixture",
]
