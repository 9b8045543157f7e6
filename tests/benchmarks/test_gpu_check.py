"""benchmarks/gpu_check.sh runs end to end (its dry run: every section on the CPU at toy sizes) and writes the
documented summary."""

import json
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def test_dry_run_writes_every_section(tmp_path: Path) -> None:
    done = subprocess.run(["bash", SCRIPT, "--dry-run", "--out", tmp_path], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "gpu-check.json").read_text())
    assert summary["dry_run"] and summary["device"] == "cpu"
    assert [(s["name"], s["ok"]) for s in summary["sections"]] == [
        ("tests", True),
        ("throughput", True),
        ("wide_topk", True),
        ("bench", True),
    ]
    tests = summary["tests"]
    assert tests["failed"] == 0 and tests["passed"] >= 12  # 3 + 3 path-agreement cases, bf16 training, 5 sync cases
    (table,) = summary["throughput"]
    rows = {(r["activation"], r["path"]) for r in table["rows"]}
    assert rows == {("relu", "dense"), ("jumprelu", "dense")} | {
        (a, p) for a in ("topk", "batchtopk", "matryoshka") for p in ("sparse", "dense")
    }
    for row in table["rows"]:
        assert row["samples_per_s"] > 0
        assert abs(row["of_dense_limit"] - row["samples_per_s"] / table["dense_limit"]) < 1e-9
    assert summary["wide_topk"]["peak_kind"] == "rss" and summary["wide_topk"]["peak_gib"] > 0
    runs = {r["name"]: r for r in summary["bench"]["runs"]}
    assert set(runs) == {"topk", "topk-fa"} and runs["topk"]["l0"] == 4.0  # the smoke preset's k
    page = (tmp_path / "gpu-check.md").read_text()
    assert "| topk | sparse |" in page and "| topk-fa |" in page and "FAILED" not in page


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_a_missing_gpu_is_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(["bash", SCRIPT, "--out", out], capture_output=True, text=True)
    assert done.returncode == 2
    assert "no CUDA device is visible to torch; use --dry-run" in done.stderr
    assert not out.exists()
