"""Latent parallelism is the same model: tp = 2 and dp 2 × tp 2 give the unsharded loss terms, x̂ and every
gradient of one step, then the same parameters after 12 Adam steps (float64, atol 1e-10), for all five activations,
SAE / transcoder / crosscoder, both TopK paths, AuxK with dead latents, resampling and anchors; a checkpoint saved
at tp = 2 resumes at tp = 1 to the uninterrupted run. Each piece of the construction, removed, breaks it
(negative controls)."""

from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from distributed_worker import BATCH, gradient_case, latent_worker, resume_worker, run_case
from distributed_worker import CASES as DATA_PARALLEL_CASES

CASES = [*DATA_PARALLEL_CASES, "relu-crosscoder"]
MESH_CASES = ["topk-sae-sparse-auxk", "topk-sae-sparse-resample", "batchtopk-sae-sparse-auxk", "jumprelu-sae"]
"""The dp 2 × tp 2 grid runs a subset (it costs four processes)."""


def run_grid(world: int, tp: int, tmp_path: Path, cases: list[str], control: str = "") -> list[dict]:
    """Every rank's results, in rank order."""
    out = tmp_path / f"w{world}tp{tp}{control}"
    init = tmp_path / f"init-{world}-{tp}{control}"
    args = (world, str(init), cases, str(out), tp, control)
    mp.start_processes(latent_worker, args=args, nprocs=world, start_method="spawn")
    return [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(world)]


def assemble(shards: list[dict], key: str) -> dict[str, torch.Tensor]:
    """Whole tensors from the latent shards of one replica (ranks 0 … tp−1)."""
    dims = shards[0]["dims"]
    return {
        name: torch.cat([s[key][name] for s in shards], dim=dims[name]) if name in dims else shards[0][key][name]
        for name in shards[0][key]
    }


@pytest.fixture(scope="module")
def single() -> dict:
    return {case: {"grad": gradient_case(case), "run": run_case(case)} for case in CASES}


@pytest.fixture(scope="module")
def tp2(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return run_grid(2, 2, tmp_path_factory.mktemp("tp2"), CASES)


def _check(single: dict, replica: list[dict], case: str, rows: slice) -> None:
    grad = [r[case]["grad"] for r in replica]
    for term, value in single[case]["grad"]["terms"].items():
        assert grad[0]["terms"][term] == pytest.approx(value, rel=1e-10, abs=1e-12), (case, term)
    torch.testing.assert_close(grad[0]["x_hat"], single[case]["grad"]["x_hat"][rows], atol=1e-10, rtol=0)
    whole = assemble(grad, "grads")
    assert whole.keys() == single[case]["grad"]["grads"].keys()
    for name, expected in single[case]["grad"]["grads"].items():
        torch.testing.assert_close(whole[name], expected, atol=1e-10, rtol=0, msg=f"{case}: gradient of {name}")
    runs = [r[case]["run"] for r in replica]
    for name, expected in single[case]["run"]["state"].items():
        got = assemble(runs, "state")[name]
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=0, msg=f"{case}: {name} after 12 steps")
    for term, value in single[case]["run"]["last"].items():
        assert runs[0]["last"][term] == pytest.approx(value, rel=1e-10, abs=1e-12), (case, term)
    assert runs[0]["resampled"] == single[case]["run"]["resampled"]


@pytest.mark.parametrize("case", CASES)
def test_two_latent_shards_are_the_unsharded_model(single: dict, tp2: list[dict], case: str) -> None:
    _check(single, tp2, case, slice(None))


def test_the_cases_exercise_what_they_name(single: dict) -> None:
    assert single["topk-sae-sparse-resample"]["run"]["resampled"] > 0
    assert single["topk-sae-sparse-auxk"]["grad"]["terms"]["auxk"] > 0
    assert single["topk-sae-sparse-auxk"]["run"]["last"]["auxk"] > 0
    assert single["relu-sae-anchors"]["grad"]["terms"]["anchor"] > 0


def test_a_dp2_by_tp2_grid_is_the_unsharded_model(single: dict, tmp_path: Path) -> None:
    ranks = run_grid(4, 2, tmp_path, MESH_CASES)
    for case in MESH_CASES:
        _check(single, ranks[:2], case, slice(0, BATCH // 2))  # replica 0: ranks 0, 1 (the first half of the rows)
        second = assemble([r[case]["run"] for r in ranks[2:]], "state")  # replica 1 holds the same parameters
        for name, value in assemble([r[case]["run"] for r in ranks[:2]], "state").items():
            torch.testing.assert_close(second[name], value, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("control", "case", "broken"),
    [
        ("backward-all-reduce", "topk-sae-sparse-auxk", "W_dec"),
        ("no-replicated-input", "relu-sae", "b_dec"),
        ("per-shard-topk", "topk-sae-dense", "W_dec"),
    ],
)
def test_each_piece_is_needed(single: dict, tmp_path: Path, control: str, case: str, broken: str) -> None:
    """An all-reduce in the decoder sum's backward (torch.distributed.nn's), no gradient sum for the replicated
    b_dec, or each shard taking its own top k: the gradients differ."""
    ranks = run_grid(2, 2, tmp_path, [case], control)
    got = assemble([r[case]["grad"] for r in ranks], "grads")[broken]
    assert (got - single[case]["grad"]["grads"][broken]).abs().max() > 1e-6


def _resume(tmp_path: Path, world: int, tp: int, workdir: Path, until: int | None, tag: str) -> list[dict]:
    out = tmp_path / tag
    args = (world, str(tmp_path / f"init-{tag}"), "topk-sae-sparse-resample", str(workdir), tp, until, str(out))
    mp.start_processes(resume_worker, args=args, nprocs=world, start_method="spawn")
    return [torch.load(f"{out}.{rank}", weights_only=True) for rank in range(world)]


def test_a_run_saved_at_tp2_resumes_at_tp1_to_the_uninterrupted_run(single: dict, tmp_path: Path) -> None:
    workdir = tmp_path / "run"
    _resume(tmp_path, 2, 2, workdir, 6, "first")  # checkpoint at step 4, stopped after step 6
    assert (workdir / "checkpoint.json").is_file() and not (workdir / "checkpoint.pt").exists()
    assert len(list((workdir / "checkpoint-4").glob("*.safetensors"))) == 2  # one file per shard
    resumed = run_case("topk-sae-sparse-resample", None, str(workdir))  # one process, whole dictionary
    for name, expected in single["topk-sae-sparse-resample"]["run"]["state"].items():
        torch.testing.assert_close(resumed["state"][name], expected, atol=1e-10, rtol=0, msg=name)
    assert resumed["resampled"] == single["topk-sae-sparse-resample"]["run"]["resampled"]
