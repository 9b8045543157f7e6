"""Data parallelism is the same run: W ranks × batch B/W equal one process with batch B after 12 Adam steps
(float64, atol 1e-10), for all five activations (BatchTopK and Matryoshka with their batch-wide selection over
the global batch), SAE / transcoder / crosscoder, both TopK paths, AuxK with dead latents, resampling and anchors;
with the gradient sum removed, or BatchTopK selecting per rank, the runs differ (negative controls)."""

import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from distributed_worker import CASES, nan_worker, run_case, worker


def run_world(world: int, tmp_path: Path, cases: list[str], control: str = "") -> dict:
    out = tmp_path / f"w{world}{control}.pt"
    init = tmp_path / f"init-{world}{control}"
    mp.start_processes(worker, args=(world, str(init), cases, str(out), control), nprocs=world, start_method="spawn")
    return torch.load(out, weights_only=True)


@pytest.fixture(scope="module")
def single() -> dict:
    return {case: run_case(case) for case in CASES}


def _max_difference(a: dict, b: dict) -> float:
    return max(float((a["state"][k] - b["state"][k]).abs().max()) for k in a["state"])


@pytest.mark.parametrize("world", [2, 4])
def test_ranks_together_train_exactly_the_single_process_run(single: dict, world: int, tmp_path: Path) -> None:
    cases = CASES if world == 2 else ["topk-sae-sparse-auxk", "topk-sae-sparse-resample", "batchtopk-sae-sparse-auxk"]
    parallel = run_world(world, tmp_path, cases)
    for case in cases:
        assert _max_difference(single[case], parallel[case]) < 1e-10, case
        for term, value in single[case]["last"].items():
            assert parallel[case]["last"][term] == pytest.approx(value, rel=1e-10, abs=1e-12), (case, term)
        assert parallel[case]["resampled"] == single[case]["resampled"]
    assert single["topk-sae-sparse-resample"]["resampled"] > 0  # the resampling case did resample
    assert single["topk-sae-sparse-auxk"]["last"]["auxk"] > 0  # and AuxK saw dead latents


@pytest.mark.parametrize(
    ("control", "case"), [("no-gradient-sum", "topk-sae-dense"), ("per-rank-batchtopk", "batchtopk-sae-dense")]
)
def test_negative_controls_differ(single: dict, tmp_path: Path, control: str, case: str) -> None:
    """Without the gradient sum, or with BatchTopK selecting per rank, the runs are not the same run."""
    parallel = run_world(2, tmp_path, [case], control=control)
    assert _max_difference(single[case], parallel[case]) > 1e-6


def test_a_nan_on_one_rank_stops_every_rank(tmp_path: Path) -> None:
    out = tmp_path / "outcome"
    context = mp.start_processes(
        nan_worker, args=(2, str(tmp_path / "init"), str(out)), nprocs=2, start_method="spawn", join=False
    )
    assert context is not None
    deadline = time.monotonic() + 120  # join() returns at each process's exit: wait for all of them
    finished = False
    while not finished and time.monotonic() < deadline:
        finished = context.join(timeout=max(1.0, deadline - time.monotonic()))
    for process in context.processes:  # a hang leaves them running: end them before failing
        process.kill()
    assert finished, "a rank hung instead of raising"
    for rank in (0, 1):
        assert "loss became nan at step 5" in (tmp_path / f"outcome.{rank}").read_text()
