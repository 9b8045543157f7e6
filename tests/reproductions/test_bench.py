"""`dictlab bench` end to end (smoke preset, real subprocess), resume, and its bad-input errors."""

import json
import subprocess
from pathlib import Path

import pytest

from cli_helpers import run_dictlab
from dictlab.data import DataView, GroundTruth, generate_lrb
from dictlab.models import load_dictionary
from dictlab.reproductions.bench import BenchPreset, BenchRequest, resolve_preset, run_spec, sweep_coefficients

REQUIRED_KEYS = {
    "method", "anchored", "gt_recovery_enc", "gt_recovery_dec", "mip_enc", "mip_dec", "gt_recovery_enc_90",
    "gt_recovery_dec_90", "l0", "fvu", "dead_fraction", "mcc", "steps", "wall_s", "samples_per_s", "mip_chance",
}  # fmt: skip


@pytest.fixture(scope="module")
def smoke_bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("bench")
    return out, run_dictlab("bench", "--preset", "smoke", "--out", str(out))  # progress on, output to pipes


def test_smoke_bench_writes_every_artifact(smoke_bench) -> None:
    out, proc = smoke_bench
    assert proc.returncode == 0, proc.stderr
    records = json.loads((out / "results.json").read_text())
    assert len(records) == 14
    assert {(r["method"], r["anchored"]) for r in records} == {
        (m, a)
        for m in ("relu", "jumprelu", "topk", "batchtopk", "matryoshka", "transcoder", "crosscoder")
        for a in (False, True)
    }
    for record in records:
        assert record.keys() >= REQUIRED_KEYS
        assert 0 <= record["gt_recovery_dec"] <= 1 and 0 < record["mip_dec"] <= 1
        assert record["samples_per_s"] > 0 and record["steps"] > 0
    topk = [r for r in records if r["method"] == "topk"]
    assert all(abs(r["l0"] - 4) < 1e-6 for r in topk), "TopK with k=4 must have L0 exactly 4"
    results_md = (out / "results.md").read_text()
    assert "84.90" in results_md and "encoder" in results_md and "decoder" in results_md
    for record in records:
        trajectory = record["trajectory"]
        assert trajectory["step"][-1] == record["steps"] and len(trajectory["mip_dec"]) == len(trajectory["step"])
        assert trajectory["mip_dec"][-1] == pytest.approx(record["mip_dec"], abs=1e-6), "probe = final evaluation"
    for figure in ("recovery_curves.png", "best_match_histograms.png", "training_trajectories.png"):
        assert (out / "figures" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "<table" in html and "recovery_curves.png" in html
    assert "dec GT%" in proc.stdout, "the table is printed"


def test_redirected_progress_is_a_short_log_of_whole_lines(smoke_bench) -> None:
    _, proc = smoke_bench
    log = proc.stdout + proc.stderr
    assert "\r" not in log, "no carriage-return frames when the output is not a terminal"
    assert len(log.encode()) < 20_000, f"the smoke bench log is {len(log.encode())} bytes"
    assert "train topk/topk-fa: 32/32 (100%)" in proc.stderr, "each training phase ends with a progress line"


def test_smoke_bench_sweeps_the_sparsity_coefficients(smoke_bench) -> None:
    out, _ = smoke_bench
    sweep = json.loads((out / "sweep.json").read_text())
    assert [(r["method"], r["sparsity_coefficient"], r["anchored"]) for r in sweep] == [
        ("relu", 0.3, False),
        ("jumprelu", 0.03, False),
    ]
    assert all(r.keys() >= REQUIRED_KEYS for r in sweep)
    assert load_dictionary(out / "runs" / "relu@0.3").cfg.activation == "relu"
    results_md = (out / "results.md").read_text()
    section = results_md.split("## Sparsity-coefficient sweep")[1].split("## Notes")[0]
    assert "| relu | 0.3 |" in section and "| relu | 1\\* |" in section, "sweep rows plus the Table-1 run"
    assert "Sparsity-coefficient sweep" in (out / "report.html").read_text()
    notes = results_md.split("## Notes")[1]
    assert "over the sweep" in notes and "random directions" in notes


def test_smoke_bench_run_folders_load_with_their_ground_truth(smoke_bench) -> None:
    out, _ = smoke_bench
    model = load_dictionary(out / "runs" / "transcoder-fa")
    assert model.cfg.kind == "transcoder"
    truth = GroundTruth.load(out / "runs" / "transcoder-fa" / "ground_truth.safetensors")
    assert truth.features_out.shape[1] == model.cfg.d_out
    cfg = json.loads((out / "runs" / "transcoder-fa" / "cfg.json").read_text())
    assert cfg["metadata"]["anchor_feature_ids"], "anchored runs record which features were anchors"


def test_finished_bench_resumes_without_retraining(smoke_bench) -> None:
    out, _ = smoke_bench
    before = (out / "runs" / "topk" / "weights.safetensors").read_bytes()
    proc = run_dictlab("bench", "--preset", "smoke", "--out", str(out), "--no-progress", "--methods", "topk,relu")
    assert proc.returncode == 0, proc.stderr
    assert "already finished" in proc.stdout + proc.stderr
    assert "relu-sweep: already finished" in proc.stdout + proc.stderr
    assert (out / "runs" / "topk" / "weights.safetensors").read_bytes() == before


def test_bench_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    proc = run_dictlab("bench", "--preset", "smoke", "--out", str(tmp_path / "x"), "--methods", "topk,gelu")
    assert proc.returncode != 0 and "unknown method(s) ['gelu']; choose from" in proc.stderr
    assert not (tmp_path / "x" / "results.json").exists()
    proc = run_dictlab("bench", "--preset", "smoke", "--out", str(tmp_path / "w"), "--anchor-terms", "rows")
    assert proc.returncode != 0 and "'rows' is not one of 'both', 'encoder', 'decoder'" in proc.stderr
    proc = run_dictlab("bench", "--preset", "huge", "--out", str(tmp_path / "y"))
    assert proc.returncode != 0 and "huge" in proc.stderr
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "run.json").write_text("{broken")
    proc = run_dictlab("bench", "--preset", "smoke", "--out", str(tmp_path / "z"), "--methods", "topk")
    assert proc.returncode != 0 and "run.json is not valid JSON" in proc.stderr


def test_overrides_apply_to_the_preset() -> None:
    preset = resolve_preset(BenchRequest(preset="paper", steps=3, seed=5, anchor_terms="decoder"))
    assert preset.train.steps == 3 and preset.data.seed == 5 and preset.d_sae == 16_000
    assert preset.anchor_terms == "decoder"
    smoke = resolve_preset(BenchRequest(preset="smoke", anchor_terms="decoder"))
    assert run_spec(smoke, "topk", True, tiny_view(smoke)).recipe.anchor_terms == "decoder"
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_preset(BenchRequest(preset="nope"))


def tiny_view(preset: BenchPreset) -> DataView:
    """The SAE view of a few samples from ``preset``'s generator (run_spec only needs its dimensions)."""
    return generate_lrb(preset.data.model_copy(update={"n_train": 8, "n_val": 0, "n_test": 8})).view("sae")


def test_only_penalised_methods_have_a_coefficient_to_sweep() -> None:
    preset = resolve_preset(BenchRequest(preset="smoke"))
    view = tiny_view(preset)
    assert run_spec(preset, "relu", False, view, coefficient=0.3).name == "relu@0.3"
    assert sweep_coefficients(preset, "relu") == (0.3,) and sweep_coefficients(preset, "topk") == ()
    with pytest.raises(ValueError, match="no sparsity coefficient"):
        run_spec(preset, "topk", False, view, coefficient=0.3)
