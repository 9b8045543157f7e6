"""Data and latent parallelism on this machine: per step and per rank, compute time against communication time
and bytes, and each process's peak memory.

Usage: python benchmarks/parallel_training.py [--world 2] [--tp 1] [--d-in 768] [--d-sae 16384] [--batch 4096]
                                              [--k 32] [--steps 6] [--activation topk] [--no-single]

Spawns ``--world`` gloo processes as a (world / tp) × tp grid (tp = 1: data parallel; tp = world: latent
parallel) and, for comparison unless ``--no-single``, one process; all train the same dictionary with
:class:`dictlab.training.Trainer` on random rows for ``--steps`` steps after one warm-up step. Communication is
timed around every all-reduce and all-gather (gradients, loss terms, fired latents; with latent shards also the
decoder's partial sums, the top-k candidates and b_dec's gradient); the rest of the step is compute. Bytes are the
payload each rank contributes per step (a ring all-reduce moves about 2·(W−1)/W of it over each link). On CPU with
gloo the processes share the machine's cores, so this shows the communication cost and the memory per process, not
a speed-up. The last line is a JSON record for benchmarks/scaling_projection.py.
"""

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from dictlab.distributed.mesh import Mesh
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer


def _timed_collectives(record: list[tuple[float, int]]) -> None:
    """Wrap dist.all_reduce / all_gather so each call's seconds and bytes are recorded."""
    for name in ("all_reduce", "all_gather"):
        original = getattr(dist, name)

        def timed(*args: object, _original=original, **kwargs: object) -> object:  # type: ignore[no-untyped-def]
            tensor = args[1] if _original.__name__ == "all_gather" else args[0]
            started = time.perf_counter()
            result = _original(*args, **kwargs)
            size = tensor.numel() * tensor.element_size() if isinstance(tensor, torch.Tensor) else 0
            record.append((time.perf_counter() - started, size))
            return result

        setattr(dist, name, timed)


def _train(args: argparse.Namespace) -> tuple[list[float], list[tuple[float, int]]]:
    cfg = DictionaryConfig(d_in=args.d_in, d_out=args.d_in, d_sae=args.d_sae, activation=args.activation, k=args.k)
    mesh = Mesh.build(args.tp) if dist.is_initialized() else Mesh.alone()
    model = SparseDictionary(cfg, torch.Generator().manual_seed(0), mesh=mesh)
    rows = torch.randn(args.batch * (args.steps + 2), args.d_in, generator=torch.Generator().manual_seed(1))
    config = TrainConfig(batch_size=args.batch, steps=args.steps + 1, checkpoint_every=0, progress=False)
    recipe = RecipeConfig(aux_coefficient=0.0)
    trainer = Trainer([Member("sae", model, recipe)], ShuffledBatches(rows, args.batch, 0), config, mesh=mesh)
    record: list[tuple[float, int]] = []
    steps: list[float] = []
    trainer.fit(until_step=1)  # warm-up
    if dist.is_initialized():
        _timed_collectives(record)
    for step in range(2, args.steps + 2):
        started = time.perf_counter()
        trainer.fit(until_step=step)
        steps.append(time.perf_counter() - started)
    return steps, record


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _worker(rank: int, world: int, init: str, args: argparse.Namespace, out: str) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads() // world))
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        steps, record = _train(args)
        torch.save({"steps": steps, "record": record, "rss": _peak_rss_gib()}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--d-in", type=int, default=768)
    parser.add_argument("--d-sae", type=int, default=16384)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--activation", default="topk")
    parser.add_argument("--tp", type=int, default=1, help="latent shards (divides --world)")
    parser.add_argument("--no-single", action="store_true", help="skip the one-process run (too big for one)")
    args = parser.parse_args()
    title = f"{args.d_in} → {args.d_sae} {args.activation}, batch {args.batch}"
    if not args.no_single:
        single, _ = _train(args)
        print(f"{title}: one process {statistics.median(single):.2f} s/step, peak RSS {_peak_rss_gib():.2f} GiB")
    n_parameters = 2 * args.d_in * args.d_sae + args.d_sae + args.d_in
    print(f"{title}: one process would need ≥ {16 * n_parameters / 2**30:.1f} GiB for weights, gradients and Adam")
    folder = Path(tempfile.mkdtemp())
    mp.start_processes(_worker, args=(args.world, str(folder / "init"), args, str(folder / "r")), nprocs=args.world,
                       start_method="spawn")  # fmt: skip
    print(f"{args.world} processes, dp {args.world // args.tp} × tp {args.tp}:")
    print("| rank | s/step | of which communication | payload per step | peak RSS |")
    print("|---|---|---|---|---|")
    payloads = []
    for rank in range(args.world):
        result = torch.load(f"{folder / 'r'}.{rank}", weights_only=True)
        step = statistics.median(result["steps"])
        comm = sum(t for t, _ in result["record"]) / len(result["steps"])
        payload = sum(b for _, b in result["record"]) / len(result["steps"])
        payloads.append(payload)
        print(f"| {rank} | {step:.2f} | {comm:.2f} s ({comm / step:.0%}) | {payload / 2**20:.1f} MiB | "
              f"{result['rss']:.2f} GiB |")  # fmt: skip
    record = vars(args) | {"payload_bytes_per_rank": max(payloads)}
    print(json.dumps(record))


if __name__ == "__main__":
    main()
