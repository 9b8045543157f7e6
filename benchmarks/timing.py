"""Measurements shared by the benchmark scripts: the machine's matmul rate and a process's peak memory."""

import statistics
import time
from pathlib import Path

import torch


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued kernels (a no-op on CPU), so that a host clock measures them."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(batch: int, d_in: int, d_sae: int, repeats: int = 7, device: str | torch.device = "cpu") -> float:
    """fp32 rate of the SAE-shaped product [batch, d_in]·[d_in, d_sae] on ``device`` (median of ``repeats``),
    GFLOP/s. On CUDA the product runs at the precision ``torch.backends.cuda.matmul`` allows (TF32 off by default)."""
    device = torch.device(device)
    a, b = torch.randn(batch, d_in, device=device), torch.randn(d_in, d_sae, device=device)
    a @ b
    synchronize(device)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - started)
    return 2 * batch * d_in * d_sae / statistics.median(times) / 1e9


def peak_rss_mib() -> float:
    """This process's peak RSS since exec (VmHWM; ``ru_maxrss`` would include the parent's peak at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
