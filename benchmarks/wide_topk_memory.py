"""Peak memory and speed of a wide TopK SAE: d_in = 768, d_sae = 65,536, k = 32, batch 4096 by default.

Usage: python benchmarks/wide_topk_memory.py [--d-sae 65536] [--steps 4] [--path sparse|dense]

Trains ``steps`` full updates (Adam, AuxK on, decoder renormalisation) on random rows and prints samples/s after
the first step and the process's peak RSS. Parameters, gradients and Adam moments alone take 32·d_in·d_sae bytes
(1.5 GiB at the default size); the [batch, d_sae] pre-activations another 4·batch·d_sae (1 GiB).
"""

import argparse
import time

import torch
from timing import peak_rss_mib

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d-in", type=int, default=768)
    parser.add_argument("--d-sae", type=int, default=65_536)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--path", choices=("sparse", "dense"), default="sparse")
    args = parser.parse_args()
    cfg = DictionaryConfig(d_in=args.d_in, d_out=args.d_in, d_sae=args.d_sae, activation="topk", k=args.k)
    member = Member("wide", SparseDictionary(cfg), RecipeConfig(path=args.path, aux_coefficient=1 / 32))
    rows = torch.randn(2 * args.batch, args.d_in)
    config = TrainConfig(batch_size=args.batch, steps=args.steps, progress=False, checkpoint_every=0)
    trainer = Trainer([member], ShuffledBatches(rows, args.batch, 0), config)
    trainer.fit(until_step=1)
    started = time.perf_counter()
    trainer.fit()
    rate = (args.steps - 1) * args.batch / (time.perf_counter() - started)
    print(
        f"TopK {args.d_in} -> {args.d_sae:,}, k {args.k}, batch {args.batch}, {args.path} path: "
        f"{rate:,.0f} samples/s over {args.steps - 1} steps; peak RSS {peak_rss_mib() / 1024:.2f} GiB"
    )


if __name__ == "__main__":
    main()
