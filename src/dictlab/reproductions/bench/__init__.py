"""``dictlab bench``: the Linear Representation Bench (Tang et al., arXiv 2512.05534): every Table-1 method, plain
and with feature anchoring, on one generated dataset with known features."""

from dictlab.reproductions.bench.methods import Method, RunSpec, bench_methods, run_spec, sweep_coefficients
from dictlab.reproductions.bench.presets import PRESETS, BenchPreset, get_preset
from dictlab.reproductions.bench.records import BenchRecord, read_records
from dictlab.reproductions.bench.run import BenchRequest, BenchResult, resolve_preset, run_bench, run_bench_preset

__all__ = [
    "PRESETS",
    "BenchPreset",
    "BenchRecord",
    "BenchRequest",
    "BenchResult",
    "Method",
    "RunSpec",
    "bench_methods",
    "get_preset",
    "read_records",
    "resolve_preset",
    "run_bench",
    "run_bench_preset",
    "run_spec",
    "sweep_coefficients",
]
