"""Optimality diagnostics: the nonnegative L1 dictionary problem (P_K), its first-order conditions, the pairwise
hull test, hierarchy / dense / residual structure, and the convex wide-dictionary limit (after Dorrell,
arXiv 2606.02385; the derivations are in docs/optimality.md)."""

from dictlab.diagnostics.codes import LassoResult, nonnegative_lasso
from dictlab.diagnostics.conditions import check_conditions
from dictlab.diagnostics.diagnose import DiagnoseOptions, Diagnostics, DiagnosticsReport, diagnose_codes, diagnose_model
from dictlab.diagnostics.pairwise import HullLP, PairVerdict, PairwiseResult, hull_lp, pairwise_hull_test
from dictlab.diagnostics.problem import DiagnosticsInputError, L1Dictionary, check_data, make_dictionary, objective
from dictlab.diagnostics.residuals import split_pressure
from dictlab.diagnostics.sae_mapping import dictionary_from_model, effective_lambda, encoder_codes
from dictlab.diagnostics.solver import SolverResult, learn_dictionary, random_atoms, stationarity
from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.diagnostics.wide_limit import WideLimit, limit_atoms, wide_limit

__all__ = [
    "DiagnoseOptions",
    "Diagnostics",
    "DiagnosticsInputError",
    "DiagnosticsReport",
    "HullLP",
    "L1Dictionary",
    "LassoResult",
    "PairVerdict",
    "PairwiseResult",
    "SolverResult",
    "SparseCodes",
    "WideLimit",
    "check_conditions",
    "check_data",
    "diagnose_codes",
    "diagnose_model",
    "dictionary_from_model",
    "effective_lambda",
    "encoder_codes",
    "hull_lp",
    "learn_dictionary",
    "limit_atoms",
    "make_dictionary",
    "nonnegative_lasso",
    "objective",
    "pairwise_hull_test",
    "random_atoms",
    "split_pressure",
    "stationarity",
    "wide_limit",
]
