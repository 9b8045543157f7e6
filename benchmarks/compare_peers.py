"""dictlab against SAELens and dictionary_learning: training samples/s and peak memory on the same data and machine.

Usage:
    python benchmarks/compare_peers.py [--repeats 3] [--dl-python /path/to/venv/bin/python] [--only topk-384]

Every (library, configuration) run is its own subprocess (so peak RSS is that run's own), fed the same LRB rows from
one .npy file through a plain iterator; the iterator stamps the time of every batch it hands out, and the rate is
(batches − warm-up) × batch / (time between the warm-up batch and the last batch), i.e. steady-state training steps
only, whatever each library does before and after its loop. Runs alternate between libraries and are repeated;
the table shows medians. The dense FLOP limit (matmul rate measured in this run ÷ 10·d·F FLOPs per sample) and the
LRB generator's time are printed beside them. Peers run at their defaults (dictlab's trainer retains freed memory
on glibc, see ``dictlab.training.cpu_memory``; the peers' processes do not).

dictionary_learning pulls nnsight and torchvision, which break transformers in a dictlab environment; install it
in a separate virtual environment and pass its interpreter with ``--dl-python`` (see docs/performance.md).
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from timing import matmul_gflops, peak_rss_mib

from dictlab.training.cpu_memory import retain_freed_memory

CONFIGS = {
    "topk-384": {"activation": "topk", "d_in": 384, "d_sae": 3072, "k": 32, "batch": 4096, "steps": 14},
    "topk-768": {"activation": "topk", "d_in": 768, "d_sae": 16384, "k": 32, "batch": 4096, "steps": 6},
    "relu-384": {"activation": "relu", "d_in": 384, "d_sae": 3072, "k": 0, "batch": 4096, "steps": 14},
}
WARMUP = 2
LIBRARIES = ("dictlab", "saelens", "dictionary_learning")


# ------------------------------------------------------------------------------------------------ worker side
class StampedBatches:
    """An endless iterator over shuffled batches of ``rows`` that records when each batch is handed out."""

    def __init__(self, rows: torch.Tensor, batch: int) -> None:
        self.rows, self.batch, self.stamps = rows, batch, []
        self._generator = torch.Generator().manual_seed(0)

    def __iter__(self) -> Iterator[torch.Tensor]:
        while True:
            order = torch.randperm(len(self.rows), generator=self._generator)
            for start in range(0, len(self.rows) - self.batch + 1, self.batch):
                self.stamps.append(time.perf_counter())
                yield self.rows[order[start : start + self.batch]]


def _dictlab(rows: torch.Tensor, cfg: dict, stamped: StampedBatches) -> None:
    from dictlab.models import DictionaryConfig, SparseDictionary
    from dictlab.training import Member, RecipeConfig, TrainConfig, Trainer

    class Source:  # dictlab's BatchSource protocol over the shared iterator
        n_samples, batch_size = len(rows), cfg["batch"]
        steps_per_epoch = len(rows) // cfg["batch"]
        _it = iter(stamped)

        def batch(self, step: int) -> torch.Tensor:
            return next(self._it)

        def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
            return rows[:n]

    topk = cfg["activation"] == "topk"
    model = SparseDictionary(
        DictionaryConfig(
            d_in=cfg["d_in"], d_out=cfg["d_in"], d_sae=cfg["d_sae"], activation=cfg["activation"], k=cfg["k"] or None
        )
    )
    recipe = RecipeConfig(sparsity_coefficient=0.0 if topk else 1.0, aux_coefficient=1 / 32 if topk else 0.0)
    train = TrainConfig(batch_size=cfg["batch"], steps=cfg["steps"], progress=False, checkpoint_every=0)
    Trainer([Member("m", model, recipe)], Source(), train).fit()  # type: ignore[arg-type]


def _saelens(rows: torch.Tensor, cfg: dict, stamped: StampedBatches) -> None:
    """SAELens's SAETrainer at its defaults (its ``use_sparse_activations=True`` fails in backward on CPU:
    ``aten::view`` has no SparseCPU kernel in torch 2.13)."""
    from sae_lens import (
        SAETrainer,
        StandardTrainingSAE,
        StandardTrainingSAEConfig,
        TopKTrainingSAE,
        TopKTrainingSAEConfig,
    )
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    common = {"d_in": cfg["d_in"], "d_sae": cfg["d_sae"], "dtype": "float32", "device": "cpu"}
    if cfg["activation"] == "topk":
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(k=cfg["k"], **common))
    else:
        sae = StandardTrainingSAE(StandardTrainingSAEConfig(l1_coefficient=1.0, **common))
    trainer_cfg = SAETrainerConfig(
        total_training_samples=cfg["steps"] * cfg["batch"],
        train_batch_size_samples=cfg["batch"],
        lr=4e-4,
        lr_end=4e-4,
        device="cpu",
        n_batches_for_norm_estimate=1,
        logger=LoggingConfig(log_to_wandb=False),
    )
    SAETrainer(cfg=trainer_cfg, sae=sae, data_provider=iter(stamped)).fit()


def _dictionary_learning(rows: torch.Tensor, cfg: dict, stamped: StampedBatches) -> None:
    from dictionary_learning.dictionary import AutoEncoder
    from dictionary_learning.trainers.standard import StandardTrainer
    from dictionary_learning.trainers.top_k import AutoEncoderTopK, TopKTrainer
    from dictionary_learning.training import trainSAE

    common = {
        "activation_dim": cfg["d_in"],
        "dict_size": cfg["d_sae"],
        "steps": cfg["steps"],
        "layer": 0,
        "lm_name": "benchmark",
        "device": "cpu",
        "warmup_steps": 1,
    }
    if cfg["activation"] == "topk":
        trainer = {"trainer": TopKTrainer, "dict_class": AutoEncoderTopK, "k": cfg["k"], **common}
    else:
        trainer = {
            "trainer": StandardTrainer,
            "dict_class": AutoEncoder,
            "l1_penalty": 0.1,
            "sparsity_warmup_steps": 1,
            **common,
        }
    trainSAE(data=iter(stamped), trainer_configs=[trainer], steps=cfg["steps"], device="cpu")


def worker(library: str, config: str, data: Path) -> None:
    """Train one library on one configuration and print a JSON line with its rate and peak RSS."""
    torch.manual_seed(0)
    cfg = CONFIGS[config]
    rows = torch.from_numpy(np.load(data))
    stamped = StampedBatches(rows, cfg["batch"])
    if library == "dictlab":
        _dictlab(rows, cfg, stamped)
    elif library == "saelens":
        _saelens(rows, cfg, stamped)
    else:
        _dictionary_learning(rows, cfg, stamped)
    stamps = stamped.stamps[-(cfg["steps"] - WARMUP) - 1 :]  # the warm-up batch's stamp, then one per timed step
    rate = (len(stamps) - 1) * cfg["batch"] / (stamps[-1] - stamps[0])
    peak = peak_rss_mib()
    print(json.dumps({"samples_per_s": rate, "peak_rss_mib": peak}))


# ------------------------------------------------------------------------------------------------ driver side
def make_rows(d_in: int, n_rows: int, folder: Path) -> tuple[Path, float]:
    """LRB rows of width ``d_in`` (4·d_in features, 1 − S = 0.01) saved as .npy; returns (path, generator seconds)."""
    from dictlab.data.lrb import LRBConfig, generate_lrb

    config = LRBConfig(
        n_features=4 * d_in, d_in=d_in, d_out=d_in, sparsity=0.99, n_train=n_rows, n_val=0, n_test=0, seed=0
    )
    started = time.perf_counter()
    dataset = generate_lrb(config)
    x, _ = dataset.view("sae").materialize(dataset.codes("train"))
    seconds = time.perf_counter() - started
    path = folder / f"rows-{d_in}.npy"
    np.save(path, (x * (d_in**0.5 / x.norm(dim=-1).pow(2).mean().sqrt())).numpy().astype(np.float32))
    return path, seconds


def run_one(python: str, library: str, config: str, data: Path) -> dict[str, float] | None:
    command = [python, __file__, "--worker", library, config, str(data)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        print(f"  {library} {config} failed:\n{done.stderr[-1500:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("LIBRARY", "CONFIG", "DATA"), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=sorted(CONFIGS), help="Configurations to run (default: all).")
    parser.add_argument("--libraries", nargs="*", choices=LIBRARIES, default=list(LIBRARIES))
    parser.add_argument("--dl-python", help="Python of an environment with dictionary_learning installed.")
    parser.add_argument("--rows", type=int, default=65_536, help="Training rows per width.")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], Path(args.worker[2]))
        return
    configs = args.only or list(CONFIGS)
    libraries = [lib for lib in args.libraries if lib != "dictionary_learning" or args.dl_python]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; libraries: {', '.join(libraries)}")
    retain_freed_memory()  # the matmul limit is measured at the machine's best, as dictlab's trainer runs
    with tempfile.TemporaryDirectory() as folder:
        data = {}
        for width in sorted({CONFIGS[c]["d_in"] for c in configs}):
            data[width], seconds = make_rows(width, args.rows, Path(folder))
            print(f"LRB generator: {args.rows:,} rows of width {width} ({4 * width} features) in {seconds:.1f} s")
        for config in configs:
            compare(config, libraries, args, data[CONFIGS[config]["d_in"]])


def compare(config: str, libraries: list[str], args: argparse.Namespace, data: Path) -> None:
    """Run every library ``args.repeats`` times on ``config`` (interleaved) and print the comparison table.

    Each repeat first measures the matmul rate (in this process, with freed memory retained: the best the machine
    does), then runs each library once; ratios are taken within a repeat, where runs are minutes apart at most,
    and the table shows their medians with the range of samples/s.
    """
    cfg = CONFIGS[config]
    runs: dict[str, list[dict[str, float] | None]] = {lib: [] for lib in libraries}
    limits = []
    for _ in range(args.repeats):
        limits.append(matmul_gflops(cfg["batch"], cfg["d_in"], cfg["d_sae"]) * 1e9 / (10 * cfg["d_in"] * cfg["d_sae"]))
        for lib in libraries:
            python = args.dl_python if lib == "dictionary_learning" else sys.executable
            runs[lib].append(run_one(python, lib, config, data))
    print(
        f"\n{config}: {cfg['activation']} {cfg['d_in']} → {cfg['d_sae']}"
        + (f", k = {cfg['k']}" if cfg["k"] else "")
        + f", batch {cfg['batch']}; dense limit {statistics.median(limits):,.0f} samples/s "
        f"(10·d·F FLOP/sample at the measured matmul rate); medians of {args.repeats} interleaved repeats"
    )
    print("| library | samples/s (range) | peak RSS (MiB) | dictlab ÷ library | ÷ dense limit |\n|---|---|---|---|---|")
    ours = runs.get("dictlab", [None] * args.repeats)
    for lib, results in runs.items():
        done = [(r, o, limit) for r, o, limit in zip(results, ours, limits, strict=True) if r is not None]
        if not done:
            continue
        rates = [r["samples_per_s"] for r, _, _ in done]
        ratios = [o["samples_per_s"] / r["samples_per_s"] for r, o, _ in done if o is not None]
        fraction = statistics.median(r["samples_per_s"] / limit for r, _, limit in done)
        peak = statistics.median(r["peak_rss_mib"] for r, _, _ in done)
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "–"
        print(
            f"| {lib} | {statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | {peak:,.0f} "
            f"| {ratio} | {fraction:.2f} |"
        )


if __name__ == "__main__":
    main()
