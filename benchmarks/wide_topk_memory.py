"""Peak memory and speed of a wide TopK SAE: d_in = 768, d_sae = 65,536, k = 32, batch 4096 by default.

Usage: python benchmarks/wide_topk_memory.py [--d-sae 65536] [--steps 4] [--path sparse|dense] [--device cpu]

Trains ``steps`` full updates (Adam, AuxK on, decoder renormalisation) on random rows and prints samples/s after
the first step and the peak memory: the process's peak RSS on CPU, the peak of allocated device memory on CUDA.
Parameters, gradients and Adam moments alone take 32·d_in·d_sae bytes (1.5 GiB at the default size); the
[batch, d_sae] pre-activations another 4·batch·d_sae (1 GiB).
"""

import argparse
import time
from dataclasses import dataclass

import torch
from timing import peak_rss_mib

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer
from dictlab.training.config import TrainingPath


@dataclass(frozen=True)
class WideRun:
    samples_per_s: float  # after the first step
    peak_gib: float  # peak RSS on CPU, peak allocated device memory on CUDA
    peak_kind: str  # "rss" or "cuda_allocated"


def wide_run(
    d_in: int = 768,
    d_sae: int = 65_536,
    k: int = 32,
    batch: int = 4096,
    steps: int = 4,
    path: TrainingPath = "sparse",
    device: str | torch.device = "cpu",
) -> WideRun:
    """Train ``steps`` updates of a TopK SAE d_in → d_sae and measure its speed and peak memory."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    cfg = DictionaryConfig(d_in=d_in, d_out=d_in, d_sae=d_sae, activation="topk", k=k)
    member = Member("wide", SparseDictionary(cfg), RecipeConfig(path=path, aux_coefficient=1 / 32))
    rows = torch.randn(2 * batch, d_in, device=device)
    config = TrainConfig(batch_size=batch, steps=steps, progress=False, checkpoint_every=0)
    trainer = Trainer([member], ShuffledBatches(rows, batch, 0), config, device=device)
    trainer.fit(until_step=1)
    started = time.perf_counter()
    trainer.fit()  # its end reads the device, so the clock includes every queued kernel
    rate = (steps - 1) * batch / (time.perf_counter() - started)
    if device.type == "cuda":
        return WideRun(rate, torch.cuda.max_memory_allocated(device) / 2**30, "cuda_allocated")
    return WideRun(rate, peak_rss_mib() / 1024, "rss")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-in", type=int, default=768)
    parser.add_argument("--d-sae", type=int, default=65_536)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--path", choices=("sparse", "dense"), default="sparse")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    run = wide_run(args.d_in, args.d_sae, args.k, args.batch, args.steps, args.path, args.device)
    print(
        f"TopK {args.d_in} -> {args.d_sae:,}, k {args.k}, batch {args.batch}, {args.path} path: "
        f"{run.samples_per_s:,.0f} samples/s over {args.steps - 1} steps; peak {run.peak_kind} {run.peak_gib:.2f} GiB"
    )


if __name__ == "__main__":
    main()
