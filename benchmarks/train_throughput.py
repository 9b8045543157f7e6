"""Training throughput of every activation, beside the machine's dense-matmul limit measured in the same run.

Usage: python benchmarks/train_throughput.py [--d-in 384] [--d-sae 3072] [--batch 4096] [--steps 10] [--repeats 3]

For each activation (the TopK family on both training paths) it times ``steps`` full training updates (forward,
loss, backward, Adam, decoder renormalisation) on random data and prints the median samples/s over ``repeats``.
The dense limit is the rate a dense SAE step would reach at the fp32 matmul rate measured in the same run
(≈ 10·d_in·d_sae FLOP per sample: five products of 2·d_in·d_sae), so the ratio column shows how close each path is
to the hardware; the sparse path's own limit is about five times higher (one dense product).
"""

import argparse
import statistics

import torch
from timing import matmul_gflops

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer
from dictlab.training.cpu_memory import retain_freed_memory


def train_rate(activation: str, path: str, args: argparse.Namespace) -> float:
    cfg = DictionaryConfig(d_in=args.d_in, d_out=args.d_in, d_sae=args.d_sae, activation=activation, k=args.k)
    coefficient = {"relu": 1.0, "jumprelu": 0.1}.get(activation, 0.0)
    recipe = RecipeConfig(sparsity_coefficient=coefficient, path=path)
    member = Member(activation, SparseDictionary(cfg), recipe)
    rows = torch.randn(args.batch * 4, args.d_in)
    config = TrainConfig(batch_size=args.batch, steps=args.steps, progress=False, checkpoint_every=0)
    trainer = Trainer([member], ShuffledBatches(rows, args.batch, 0), config)
    (summary,) = trainer.fit()
    return summary.samples_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-in", type=int, default=384)
    parser.add_argument("--d-sae", type=int, default=3072)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"{args.d_in} -> {args.d_sae}, batch {args.batch}, k {args.k}, torch threads {torch.get_num_threads()}")
    retain_freed_memory()  # as the trainer does: the matmul rate is then measured at the machine's best
    runs = [("relu", "dense"), ("jumprelu", "dense")]
    runs += [(a, p) for a in ("topk", "batchtopk", "matryoshka") for p in ("sparse", "dense")]
    rates: dict[tuple[str, str], list[float]] = {run: [] for run in runs}
    gflops = []
    for _ in range(args.repeats):  # interleaved, so slow spells of a shared machine hit every row alike
        gflops.append(matmul_gflops(args.batch, args.d_in, args.d_sae))
        for activation, path in runs:
            rates[(activation, path)].append(train_rate(activation, path, args))
    dense_limit = statistics.median(gflops) * 1e9 / (10 * args.d_in * args.d_sae)
    print(f"fp32 matmul: {statistics.median(gflops):.1f} GFLOP/s -> dense training limit {dense_limit:.0f} samples/s")
    print("| activation | path | samples/s | ÷ dense limit |\n|---|---|---|---|")
    for (activation, path), values in rates.items():
        rate = statistics.median(values)
        print(f"| {activation} | {path} | {rate:,.0f} | {rate / dense_limit:.2f} |")


if __name__ == "__main__":
    main()
