"""Measurements shared by the benchmark scripts: the machine's matmul rate and a process's peak memory."""

import statistics
import time
from pathlib import Path

import torch


def matmul_gflops(batch: int, d_in: int, d_sae: int, repeats: int = 7) -> float:
    """fp32 rate of the SAE-shaped product [batch, d_in]·[d_in, d_sae] (median of ``repeats``), GFLOP/s."""
    a, b = torch.randn(batch, d_in), torch.randn(d_in, d_sae)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * batch * d_in * d_sae / statistics.median(times) / 1e9


def peak_rss_mib() -> float:
    """This process's peak RSS since exec (VmHWM; ``ru_maxrss`` would include the parent's peak at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
