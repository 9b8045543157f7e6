"""`dictlab diagnose` end to end on a bench run folder and on a SAELens-format folder the test writes itself."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from cli_helpers import run_dictlab
from dictlab.diagnostics import DiagnosticsReport


@pytest.fixture(scope="module")
def bench_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    proc = run_dictlab("bench", "--preset", "smoke", "--methods", "relu,topk", "--no-sweep", "--out", str(out),
                    "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out / "runs"


def _report(folder: Path) -> DiagnosticsReport:
    return DiagnosticsReport.model_validate_json((folder / "diagnostics.json").read_text())


def test_diagnose_a_bench_run_folder(bench_runs: Path, tmp_path: Path) -> None:
    proc = run_dictlab("diagnose", str(bench_runs / "relu"), "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = _report(tmp_path)
    coefficient = json.loads((bench_runs / "relu" / "cfg.json").read_text())["metadata"]["recipe"][
        "sparsity_coefficient"
    ]
    assert report.problem.lam == pytest.approx(coefficient / 2)
    assert report.problem.codes == "exact" and report.problem.lasso_max_relative_gap < 1e-8
    assert report.source["data"].startswith("LRB test split")
    c1 = next(c for c in report.conditions if c.name == "C1 active")
    assert c1.holds  # exact codes satisfy C1 whatever the dictionary
    assert report.wide_limit.gap is not None and report.wide_limit.gap >= 0
    for name in ("pairwise_hulls.png", "violations.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
    assert "pairwise hull test" in proc.stdout and (tmp_path / "summary.txt").is_file()


def test_diagnose_refuses_topk_without_lambda_and_explains(bench_runs: Path, tmp_path: Path) -> None:
    proc = run_dictlab("diagnose", str(bench_runs / "topk"), "--out", str(tmp_path))
    assert proc.returncode != 0
    assert "no L1 term" in proc.stderr and "still applies" in proc.stderr and "--lam" in proc.stderr
    proc = run_dictlab("diagnose", str(bench_runs / "topk"), "--out", str(tmp_path), "--lam", "0.2",
                    "--codes", "encoder")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert any("no L1 term" in note for note in _report(tmp_path).notes)


def write_saelens_folder(folder: Path, d_in: int = 12, d_sae: int = 20, seed: int = 0) -> torch.Tensor:
    """A standard (ReLU) SAE in SAELens v6 layout, written by hand: cfg.json + sae_weights.safetensors.

    Its encoder is a shrunken transpose of its unit decoder, so on data built from the decoder rows it
    under-reconstructs along active atoms, as an L1-trained SAE does. Returns W_dec [d_sae, d_in].
    """
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(d_sae, d_in, generator=g)
    W_dec /= W_dec.norm(dim=1, keepdim=True)
    folder.mkdir(parents=True)
    save_file(
        {
            "W_enc": W_dec.T.contiguous() / 2,
            "b_enc": torch.full((d_sae,), -0.2),
            "W_dec": W_dec,
            "b_dec": torch.randn(d_in, generator=g) * 0.1,
        },
        str(folder / "sae_weights.safetensors"),
    )
    cfg = {
        "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu", "apply_b_dec_to_input": True,
        "normalize_activations": "none", "reshape_activations": "none", "architecture": "standard",
        "metadata": {"model_name": "toy", "hook_name": "blocks.0.hook_resid_post"},
    }  # fmt: skip
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return W_dec


def test_diagnose_a_saelens_folder(tmp_path: Path) -> None:
    W_dec = write_saelens_folder(tmp_path / "sae").numpy()
    rng = np.random.default_rng(0)
    codes = (rng.random((500, 20)) < 0.15) * rng.uniform(0.5, 1.5, (500, 20))
    acts = (codes @ W_dec).astype(np.float32)
    np.save(tmp_path / "acts.npy", acts)
    proc = run_dictlab("diagnose", str(tmp_path / "sae"), "--data", str(tmp_path / "acts.npy"), "--out",
                    str(tmp_path / "d"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = _report(tmp_path / "d")
    assert report.source["format"] == "saelens"
    assert report.problem.lam_source.startswith("estimated")
    assert report.problem.n_points == 500 and report.problem.n_atoms == 20
    proc = run_dictlab("diagnose", str(tmp_path / "sae"), "--data", str(tmp_path / "acts.npy"), "--lam", "0.3",
                    "--codes", "encoder", "--pairs", "0:1,2:3", "--out", str(tmp_path / "e"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = _report(tmp_path / "e")
    assert report.problem.lam == 0.3 and report.problem.codes == "encoder"


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (np.zeros((0, 12), np.float32), "no activations"),
        (np.full((5, 12), np.nan, np.float32), "NaN"),
        (np.ones((5, 7), np.float32), "7"),
    ],
    ids=["empty", "nan", "wrong-width"],
)
def test_diagnose_bad_data_gets_a_clear_error(tmp_path: Path, rows: np.ndarray, message: str) -> None:
    write_saelens_folder(tmp_path / "sae")
    np.save(tmp_path / "acts.npy", rows)
    proc = run_dictlab("diagnose", str(tmp_path / "sae"), "--data", str(tmp_path / "acts.npy"), "--out",
                    str(tmp_path / "d"))  # fmt: skip
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "d" / "diagnostics.json").exists()


def test_diagnose_without_data_for_a_foreign_folder_says_what_to_pass(tmp_path: Path) -> None:
    write_saelens_folder(tmp_path / "sae")
    proc = run_dictlab("diagnose", str(tmp_path / "sae"), "--out", str(tmp_path / "d"))
    assert proc.returncode != 0 and "--data" in proc.stderr
