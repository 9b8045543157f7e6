"""Training throughput of every activation, beside the machine's dense-matmul limit measured in the same run.

Usage: python benchmarks/train_throughput.py [--d-in 768] [--d-sae 4096] [--batch 1024] [--steps 20] [--repeats 3]

For each activation it times ``steps`` full training updates (forward, loss, backward, Adam, decoder
renormalisation) on random data and prints the median samples/s over ``repeats``. The "dense limit" row is the
rate a dense SAE step would reach at the measured fp32 matmul FLOP rate (≈ 12·d_in·d_sae FLOP per sample for
encoder + decoder, forward + backward), so the ratio column shows how close each path is to the hardware.
"""

import argparse
import statistics
import time

import torch

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer


def matmul_gflops(batch: int, d_in: int, d_sae: int, repeats: int = 5) -> float:
    a, b = torch.randn(batch, d_in), torch.randn(d_in, d_sae)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * batch * d_in * d_sae / statistics.median(times) / 1e9


def train_rate(activation: str, args: argparse.Namespace) -> float:
    cfg = DictionaryConfig(d_in=args.d_in, d_out=args.d_in, d_sae=args.d_sae, activation=activation, k=args.k)
    coefficient = {"relu": 1.0, "jumprelu": 0.1}.get(activation, 0.0)
    member = Member(activation, SparseDictionary(cfg), RecipeConfig(sparsity_coefficient=coefficient))
    rows = torch.randn(args.batch * 4, args.d_in)
    config = TrainConfig(batch_size=args.batch, steps=args.steps, progress=False, checkpoint_every=0)
    trainer = Trainer([member], ShuffledBatches(rows, args.batch, 0), config)
    (summary,) = trainer.fit()
    return summary.samples_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-in", type=int, default=768)
    parser.add_argument("--d-sae", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    gflops = matmul_gflops(args.batch, args.d_in, args.d_sae)
    dense_limit = gflops * 1e9 / (12 * args.d_in * args.d_sae)
    print(f"{args.d_in} -> {args.d_sae}, batch {args.batch}, k {args.k}, torch threads {torch.get_num_threads()}")
    print(f"fp32 matmul: {gflops:.1f} GFLOP/s -> dense training limit {dense_limit:.0f} samples/s")
    print(f"{'activation':<12} {'samples/s':>10} {'÷ dense limit':>14}")
    for activation in ("relu", "jumprelu", "topk", "batchtopk", "matryoshka"):
        rate = statistics.median(train_rate(activation, args) for _ in range(args.repeats))
        print(f"{activation:<12} {rate:>10.0f} {rate / dense_limit:>14.2f}")


if __name__ == "__main__":
    main()
