"""Training throughput of every activation, beside the machine's dense-matmul limit measured in the same run.

Usage: python benchmarks/train_throughput.py [--d-in 384] [--d-sae 3072] [--batch 4096] [--steps 10] [--repeats 3]
                                             [--device cpu]

For each activation (the TopK family on both training paths) it times ``steps`` full training updates (forward,
loss, backward, Adam, decoder renormalisation) on random data, the first left out as warm-up, and prints the
median steady-state samples/s over ``repeats``.
The dense limit is the rate a dense SAE step would reach at the fp32 matmul rate measured in the same run
(≈ 10·d_in·d_sae FLOP per sample: five products of 2·d_in·d_sae), so the ratio column shows how close each path is
to the hardware; the sparse path's own limit is about five times higher (one dense product).
"""

import argparse
import statistics
from dataclasses import dataclass

import torch
from timing import matmul_gflops

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer
from dictlab.training.cpu_memory import retain_freed_memory

WARMUP_STEPS = 1
"""Steps left out of the timing: the first allocates the optimiser's state and the step's buffers."""
RUNS = [("relu", "dense"), ("jumprelu", "dense")] + [
    (a, p) for a in ("topk", "batchtopk", "matryoshka") for p in ("sparse", "dense")
]
"""(activation, training path) of every row."""


@dataclass(frozen=True)
class Shape:
    """One benchmark setting: SAE d_in → d_sae, TopK k, batch rows, steps per run (the first untimed), interleaved
    repeats."""

    d_in: int = 384
    d_sae: int = 3072
    k: int = 32
    batch: int = 4096
    steps: int = 10
    repeats: int = 3


@dataclass(frozen=True)
class Throughput:
    """Median samples/s of every run and the dense limit measured beside them."""

    matmul_gflops: float
    dense_limit: float  # samples/s of a dense step (10·d_in·d_sae FLOP per sample) at the measured matmul rate
    rates: dict[tuple[str, str], float]


def train_rate(activation: str, path: str, shape: Shape, device: torch.device) -> float:
    cfg = DictionaryConfig(d_in=shape.d_in, d_out=shape.d_in, d_sae=shape.d_sae, activation=activation, k=shape.k)
    coefficient = {"relu": 1.0, "jumprelu": 0.1}.get(activation, 0.0)
    recipe = RecipeConfig(sparsity_coefficient=coefficient, path=path)
    member = Member(activation, SparseDictionary(cfg), recipe)
    rows = torch.randn(shape.batch * 4, shape.d_in, device=device)
    config = TrainConfig(batch_size=shape.batch, steps=shape.steps, progress=False, checkpoint_every=0)
    trainer = Trainer([member], ShuffledBatches(rows, shape.batch, 0), config, device=device)
    (warm,) = trainer.fit(until_step=WARMUP_STEPS)  # allocates Adam's state and the step's buffers
    (summary,) = trainer.fit()  # its end reads the device, so the clock includes every queued kernel
    return (shape.steps - WARMUP_STEPS) * shape.batch / (summary.train_seconds - warm.train_seconds)


def measure(shape: Shape, device: str | torch.device = "cpu") -> Throughput:
    """Every run of ``RUNS``, ``shape.repeats`` times interleaved (slow spells of a shared machine hit every row
    alike), with the matmul rate measured before each round."""
    device = torch.device(device)
    if device.type == "cpu":
        retain_freed_memory()  # as the trainer does: the matmul rate is then measured at the machine's best
    rates: dict[tuple[str, str], list[float]] = {run: [] for run in RUNS}
    gflops = []
    for _ in range(shape.repeats):
        gflops.append(matmul_gflops(shape.batch, shape.d_in, shape.d_sae, device=device))
        for activation, path in RUNS:
            rates[(activation, path)].append(train_rate(activation, path, shape, device))
    rate = statistics.median(gflops)
    return Throughput(
        matmul_gflops=rate,
        dense_limit=rate * 1e9 / (10 * shape.d_in * shape.d_sae),
        rates={run: statistics.median(values) for run, values in rates.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-in", type=int, default=Shape.d_in)
    parser.add_argument("--d-sae", type=int, default=Shape.d_sae)
    parser.add_argument("--k", type=int, default=Shape.k)
    parser.add_argument("--batch", type=int, default=Shape.batch)
    parser.add_argument("--steps", type=int, default=Shape.steps)
    parser.add_argument("--repeats", type=int, default=Shape.repeats)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    shape = Shape(args.d_in, args.d_sae, args.k, args.batch, args.steps, args.repeats)
    print(f"{shape.d_in} -> {shape.d_sae}, batch {shape.batch}, k {shape.k}, torch threads {torch.get_num_threads()}")
    result = measure(shape, args.device)
    print(f"fp32 matmul: {result.matmul_gflops:.1f} GFLOP/s -> dense training limit {result.dense_limit:.0f} samples/s")
    print("| activation | path | samples/s | ÷ dense limit |\n|---|---|---|---|")
    for (activation, path), rate in result.rates.items():
        print(f"| {activation} | {path} | {rate:,.0f} | {rate / result.dense_limit:.2f} |")


if __name__ == "__main__":
    main()
