"""Kill and resume: a run SIGKILLed anywhere and re-run with the same command ends with the same bytes of
weights and the same log as a run that was never interrupted."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import run_dictlab
from dictlab.outputs import folder_lock
from reliability_helpers import SMALL_TRAIN, snapshot

KILL_HELPER = Path(__file__).parents[1] / "kill_helper.py"
TIMING = {"samples_per_s", "train_seconds", "peak_rss_mib", "wall_s", "eval_s"}


def killed(point: str, at: int, *args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(KILL_HELPER), point, str(at), *map(str, args)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc


def without_timing(value: object) -> object:
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def train_args(store: Path, out: Path) -> list[str | Path]:
    return ["train", "--store", store, "--out", out, "--steps", "420", "--k", "4", *SMALL_TRAIN]


@pytest.mark.parametrize("kill_step", [150, 350], ids=["before-first-checkpoint", "after-a-checkpoint"])
def test_killed_train_resumes_to_identical_weights_and_log(tiny_store: Path, tmp_path: Path, kill_step: int) -> None:
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert run_dictlab(*map(str, train_args(tiny_store, reference))).returncode == 0
    killed("log", kill_step, *train_args(tiny_store, resumed))
    log = resumed / "train" / "train_log.jsonl"
    assert len(log.read_text().splitlines()) == kill_step // 50  # the killed run had logged past its checkpoint
    assert (resumed / "train" / "checkpoint.pt").exists() == (kill_step > 200)
    finish = run_dictlab(*map(str, train_args(tiny_store, resumed)))
    assert finish.returncode == 0, finish.stderr
    for name in ("weights.safetensors", "cfg.json", "train/train_log.jsonl"):
        assert (resumed / name).read_bytes() == (reference / name).read_bytes(), name
    metrics = [without_timing(json.loads((d / "metrics.json").read_text())) for d in (reference, resumed)]
    assert metrics[0] == metrics[1]


def test_stale_temporaries_are_removed_on_the_next_run(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    killed("log", 250, *train_args(tiny_store, out))
    stale = out / "train" / ".checkpoint.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    assert run_dictlab(*map(str, train_args(tiny_store, out))).returncode == 0
    assert not stale.exists()
    assert not list(out.rglob("*.tmp"))


def bench_args(out: Path) -> list[str | Path]:
    return ["bench", "--preset", "smoke", "--methods", "topk,relu", "--no-sweep", "--steps", "240", "--out", out]


def test_killed_bench_resumes_to_identical_runs_and_trajectories(tmp_path: Path) -> None:
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert run_dictlab(*map(str, bench_args(reference)), "--no-progress").returncode == 0
    killed("log", 100, *bench_args(resumed), "--no-progress")  # in topk's pair, before any checkpoint
    assert run_dictlab(*map(str, bench_args(resumed)), "--no-progress").returncode == 0
    for run in ("topk", "topk-fa", "relu", "relu-fa"):
        for name in ("weights.safetensors", "cfg.json"):
            assert (resumed / "runs" / run / name).read_bytes() == (reference / "runs" / run / name).read_bytes()
    for group in ("topk", "relu"):
        log = Path("train") / group / "train_log.jsonl"
        assert (resumed / log).read_bytes() == (reference / log).read_bytes()
    results = [without_timing(json.loads((d / "results.json").read_text())) for d in (reference, resumed)]
    assert results[0] == results[1]  # trajectories included


def test_killed_capture_between_shards_and_manifest_resumes_exactly(
    tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    def args(out: Path) -> list[str | Path]:
        return ["capture", "--model", tiny_lm_dir, "--module", "layer:1", "--corpus", corpus_file, "--out", out,
                "--batch-size", "8", "--shard-rows", "2000", "--no-progress"]  # fmt: skip

    reference, resumed = tmp_path / "reference", tmp_path / "resumed"
    assert run_dictlab(*map(str, args(reference))).returncode == 0
    killed("manifest", 4, *args(resumed))  # the 3rd shard's files are written, its manifest is not
    assert run_dictlab(*map(str, args(resumed))).returncode == 0
    assert snapshot(resumed) == snapshot(reference)


def test_a_second_writer_is_refused_while_the_first_runs(tiny_store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [*map(str, train_args(tiny_store, out))]
    args[args.index("420")] = "100000"
    first = subprocess.Popen([sys.executable, "-c", "from dictlab.cli.main import main; main()", *args],
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        log = out / "train" / "train_log.jsonl"
        for _ in range(600):
            if log.exists():
                break
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            subprocess.run(["sleep", "0.1"], check=True)
        second = run_dictlab(*args)
        assert second.returncode == 1
        assert f"is being written by another dictlab process (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.wait()
    with folder_lock(out):  # the kernel released the killed writer's lock: FolderLocked otherwise
        pass
