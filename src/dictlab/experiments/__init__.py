"""Experiments built on the core: the Linear Representation Bench (``dictlab bench``)."""

from dictlab.experiments.bench import METHODS, BenchRequest, BenchResult, RunSpec, resolve_preset, run_bench, run_spec
from dictlab.experiments.presets import PRESETS, BenchPreset, get_preset

__all__ = [
    "METHODS",
    "PRESETS",
    "BenchPreset",
    "BenchRequest",
    "BenchResult",
    "RunSpec",
    "get_preset",
    "resolve_preset",
    "run_bench",
    "run_spec",
]
