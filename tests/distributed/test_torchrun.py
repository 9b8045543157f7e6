"""``torchrun -m dictlab train --store``: two processes train the run one process trains with the same lanes
(float32, so equal up to summation order), as data-parallel replicas or as two latent shards (``--tp 2``), write
one run folder, and a run killed at world size 2 resumes at world size 1; a lane count the processes cannot share
is refused on every rank."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cli_helpers import run_dictlab
from dictlab.data.store import read_manifest
from reliability_helpers import SMALL_TRAIN

KILL_HELPER = Path(__file__).parents[1] / "kill_helper.py"


def torchrun(*args: str | Path, script: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    target = script if script is not None else ["-m", "dictlab"]
    return subprocess.run([*launch, *target, *map(str, args)], capture_output=True, text=True, timeout=300)


def train_args(store: Path, out: Path, steps: int = 60, lanes: int = 2) -> list[str | Path]:
    args = ["train", "--store", store, "--out", out, "--steps", str(steps), "--k", "4", *SMALL_TRAIN]
    return [*args, "--lanes", str(lanes)]


def close_runs(a: Path, b: Path, atol: float) -> None:
    wa, wb = load_file(a / "weights.safetensors"), load_file(b / "weights.safetensors")
    assert wa.keys() == wb.keys()
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], atol=atol, rtol=0)
    ha, hb = (json.loads((d / "metrics.json").read_text())["holdout"] for d in (a, b))
    assert abs(ha["fvu"] - hb["fvu"]) < 1e-4 and ha["l0"] == hb["l0"]


def test_two_processes_train_the_single_process_run(tiny_store: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_dictlab(*map(str, train_args(tiny_store, one))).returncode == 0
    proc = torchrun(*train_args(tiny_store, two))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("held-out FVU") == 1  # rank 0 reports, once
    close_runs(one, two, atol=1e-4)
    logs = [(d / "train" / "train_log.jsonl").read_text().splitlines() for d in (one, two)]
    assert len(logs[0]) == len(logs[1])
    for line_one, line_two in zip(*logs, strict=True):
        a, b = json.loads(line_one), json.loads(line_two)
        assert a["step"] == b["step"] and abs(a["loss"] - b["loss"]) <= 1e-5 * abs(a["loss"])
    assert (one / "run.json").read_text() == (two / "run.json").read_text()  # the world size is not an identity
    sharded = tmp_path / "sharded"  # the same run with the latents split over the two processes
    proc = torchrun(*train_args(tiny_store, sharded), "--tp", "2")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Sharded sums (x̂ and the encoder input's gradient over two shards, the rows' entries in another order) round
    # differently; after 60 Adam steps single weights move by ~1e-4 (measured: 1.2e-4 at 1 of 8192), so 2e-4.
    close_runs(one, sharded, atol=2e-4)
    metrics = json.loads((sharded / "metrics.json").read_text())
    assert metrics["latent_shards"] == 2 and len(metrics["peak_rss_mib_per_process"]) == 2
    assert not (sharded / "train" / "checkpoint.pt").exists() and (sharded / "train" / "checkpoint.json").exists()


def test_a_run_killed_at_two_processes_resumes_in_one(tiny_store: Path, tmp_path: Path) -> None:
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert run_dictlab(*map(str, train_args(tiny_store, reference, steps=420))).returncode == 0
    killed = torchrun("log", "350", *train_args(tiny_store, resumed, steps=420), script=[str(KILL_HELPER)])
    assert killed.returncode != 0, killed.stderr[-2000:]
    assert (resumed / "train" / "checkpoint.pt").exists() and not (resumed / "metrics.json").exists()
    finish = run_dictlab(*map(str, train_args(tiny_store, resumed, steps=420)))
    assert finish.returncode == 0, finish.stderr
    close_runs(reference, resumed, atol=1e-4)
    steps = [json.loads(line)["step"] for line in (resumed / "train" / "train_log.jsonl").read_text().splitlines()]
    assert steps == [*range(50, 420, 50), 420]  # cut back to the checkpoint of step 200, then continued


def test_a_lane_count_the_processes_cannot_share_is_refused_on_every_rank(tiny_store: Path, tmp_path: Path) -> None:
    proc = torchrun(*train_args(tiny_store, tmp_path / "run", lanes=3))
    assert proc.returncode != 0
    assert proc.stderr.count("Error: --lanes 3 cannot be split over 2 data-parallel replicas") == 2, proc.stderr[-2000:]
    # torchrun's launcher reports the failed children with its own traceback; none of dictlab's frames appear
    assert not [line for line in proc.stderr.splitlines() if "dictlab" in line and line.strip().startswith("File")]
    assert not (tmp_path / "run").exists()


def test_commands_that_are_not_distributed_refuse_torchrun(tmp_path: Path) -> None:
    proc = torchrun("reproduce", "table1", "--out", tmp_path / "table1")
    assert proc.returncode != 0 and proc.stderr.count("`dictlab reproduce` runs in one process") == 2
    assert not (tmp_path / "table1").exists()


def _without_timings(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("wall_s", "samples_per_s", "eval_s")} for r in json.loads(
        path.read_text())]  # fmt: skip


def test_the_bench_spread_over_two_processes_is_the_one_process_bench(tmp_path: Path) -> None:
    """Dictionary parallelism: the bench's training passes (one per method, one per sweep) run on process
    i mod 2; every run is trained alone from its own data stream and generator, so it is bit for bit the run one
    process makes (one process with one thread, as torchrun gives each of its processes)."""
    one, two = tmp_path / "one", tmp_path / "two"
    single = subprocess.run(
        [sys.executable, "-m", "dictlab", "bench", "--preset", "smoke", "--out", str(one), "--no-progress"],
        capture_output=True, text=True, timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    proc = torchrun("bench", "--preset", "smoke", "--out", two, "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("results.json", "sweep.json"):
        assert _without_timings(one / name) == _without_timings(two / name)
    weights = sorted(p.relative_to(one) for p in one.glob("runs/*/weights.safetensors"))
    assert len(weights) >= 14 and weights == sorted(p.relative_to(two) for p in two.glob("runs/*/weights.safetensors"))
    for path in weights:
        assert (one / path).read_bytes() == (two / path).read_bytes(), path
    assert (one / "run.json").read_text() == (two / "run.json").read_text()
    assert (two / "report.html").is_file()


def test_a_latent_parallel_run_killed_resumes_in_one_process(tiny_store: Path, tmp_path: Path) -> None:
    """Both latent shards die (SIGKILL) after step 350; the sharded checkpoint of step 200 resumes in one process
    to the run trained without interruption."""
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert run_dictlab(*map(str, train_args(tiny_store, reference, steps=420))).returncode == 0
    killed = torchrun("log", "350", *train_args(tiny_store, resumed, steps=420), "--tp", "2", script=[str(KILL_HELPER)])
    assert killed.returncode != 0, killed.stderr[-2000:]
    assert (resumed / "train" / "checkpoint.json").exists() and not (resumed / "metrics.json").exists()
    finish = run_dictlab(*map(str, train_args(tiny_store, resumed, steps=420)))
    assert finish.returncode == 0, finish.stderr
    close_runs(reference, resumed, atol=1e-4)
    assert (resumed / "train" / "checkpoint.pt").exists() and not (resumed / "train" / "checkpoint.json").exists()


@pytest.fixture(scope="module")
def two_module_store(tiny_lm_dir: Path, corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dictlab.jobs.capture import run_capture
    from lm_fixtures import capture_config

    out = tmp_path_factory.mktemp("store2") / "store"
    run_capture(capture_config(tiny_lm_dir, corpus_file, out, module=("layer:0", "layer:1")), echo=lambda _: None)
    return out


def test_one_dictionary_per_module_spread_over_two_processes(two_module_store: Path, tmp_path: Path) -> None:
    """Dictionary parallelism in ``train``: with two modules, module i trains on process i mod 2, alone, from its
    own shards: each module's run folder is byte for byte the one a one-thread process writes."""
    names = [entry.name for entry in read_manifest(two_module_store).modules]
    args = ["train", "--store", str(two_module_store), "--module", ",".join(names), "--steps", "60", "--k", "4"]
    one, two = tmp_path / "one", tmp_path / "two"
    single = subprocess.run(
        [sys.executable, "-m", "dictlab", *args, *SMALL_TRAIN, "--out", str(one)],
        capture_output=True, text=True, timeout=300, env=os.environ | {"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert single.returncode == 0, single.stderr[-2000:]
    proc = torchrun(*args, *SMALL_TRAIN, "--out", two)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in names:
        assert (one / name / "weights.safetensors").read_bytes() == (two / name / "weights.safetensors").read_bytes()
        assert (two / name / "train" / "train_log.jsonl").is_file()
    records = json.loads((two / "metrics.json").read_text())["modules"]
    assert sorted(records) == sorted(names) and all(r["peak_rss_mib_per_process"] for r in records.values())
    assert (one / "run.json").read_text() == (two / "run.json").read_text()
    refused = torchrun(*args, *SMALL_TRAIN, "--out", tmp_path / "sharded", "--tp", "2")
    assert refused.returncode != 0 and refused.stderr.count("use --tp 1") == 2
