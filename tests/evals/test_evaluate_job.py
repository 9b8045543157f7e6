"""`dictlab evaluate` end to end on a real (tiny, random) Llama: three SAEs in three formats, core metrics with
CE/KL in the model, k-sparse probing and first-letter absorption; SAEBench's output layout validated with
SAEBench's own schemas; the frontier report; resuming; bad input refused with nothing written."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import run_dictlab
from dictlab.data.store.manifest import MANIFEST_FILE
from dictlab.jobs.capture import run_capture
from dictlab.jobs.evaluate import EVALUATION_FILE, EvaluateRequest, run_evaluate
from dictlab.models import DictionaryConfig, SparseDictionary, save_dictionary
from lm_fixtures import WORDS, capture_config, make_tiny_causal_lm

HIDDEN = 32
SAEBENCH = "needs SAEBench's output schemas: pip install --no-deps sae-bench==0.6.0 (as .ci/run does)"


def _gemma_scope_folder(folder: Path, seed: int) -> Path:
    """A JumpReLU SAE in Gemma Scope's params.npz layout (W_enc [d_in, d_sae], W_dec [d_sae, d_in], thresholds)."""
    rng = np.random.default_rng(seed)
    folder.mkdir()
    d_sae = 40
    W_dec = rng.standard_normal((d_sae, HIDDEN)).astype(np.float32)
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    np.savez(
        folder / "params.npz",
        W_enc=W_dec.T.copy(),
        W_dec=W_dec,
        b_enc=np.zeros(d_sae, np.float32),
        b_dec=np.zeros(HIDDEN, np.float32),
        threshold=np.full(d_sae, 0.05, np.float32),
    )
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evaluate")
    model = make_tiny_causal_lm(root / "model", hidden=HIDDEN)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(120):
        label = ["animals", "places", "weather"][i % 3]
        words = rng.choice(WORDS, size=int(rng.integers(3, 12)))
        lines.append(json.dumps({"text": " ".join(words), "label": label}))
    corpus = root / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    store = root / "store"
    run_capture(capture_config(model, corpus, store, module=("layer:1",)), echo=lambda _m: None)
    meta = {"module": "model.layers.1", "model": str(model)}
    runs = {}
    for name, cfg in (
        ("topk-k4", DictionaryConfig(kind="sae", d_in=HIDDEN, d_out=HIDDEN, d_sae=48, activation="topk", k=4)),
        ("relu", DictionaryConfig(kind="sae", d_in=HIDDEN, d_out=HIDDEN, d_sae=48, activation="relu")),
    ):
        runs[name] = save_dictionary(SparseDictionary(cfg, torch.Generator().manual_seed(1)), root / name, meta)
    runs["gemma"] = _gemma_scope_folder(root / "gemma", 2)
    return {"root": root, "model": model, "store": store, **runs}


def _request(ws: dict[str, Path], out: Path, **kw: object) -> EvaluateRequest:
    base: dict[str, object] = {
        "runs": (ws["topk-k4"], ws["relu"], ws["gemma"]),
        "store": ws["store"],
        "evals": ("core",),
        "texts": 6,
        "rows": 600,
        "batch_size": 256,
        "words": 500,
        "out": out,
        "progress": False,
    }
    return EvaluateRequest.model_validate(base | kw)


def test_evaluate_writes_saebench_layout_and_frontier(workspace: dict[str, Path]) -> None:
    out = workspace["root"] / "out"
    ws = workspace
    proc = run_dictlab(
        "evaluate", str(ws["topk-k4"]), str(ws["relu"]), str(ws["gemma"]), "--store", str(ws["store"]),
        "--evals", "core,probing,absorption", "--texts", "6", "--rows", "600", "--batch-size", "256",
        "--words", "500", "--probing-ks", "1,2,5", "--out", str(out), "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / EVALUATION_FILE).read_text())
    evaluations = {e["name"]: e for e in summary["evaluations"]}
    assert set(evaluations) == {"topk-k4", "relu", "gemma"}
    assert evaluations["gemma"]["format"] == "gemma_scope" and evaluations["gemma"]["architecture"] == "jumprelu"
    topk = evaluations["topk-k4"]["metrics"]
    assert topk["core.sparsity.l0"] == pytest.approx(4.0)  # TopK: exactly k codes on every row
    assert topk["core.token_stats.total_tokens_eval_sparsity_variance"] == 600
    assert topk["core.model_performance_preservation.ce_loss_with_sae"] >= 0
    assert topk["sparse_probing.sae.sae_top_1_test_accuracy"] is not None
    assert "absorption_first_letter.mean.mean_absorption_fraction_score" in topk
    assert evaluations["relu"]["results"]["probing"]["stores"][0]["ks"] == [1, 2, 5]

    sae_bench = pytest.importorskip("sae_bench", reason=SAEBENCH)
    del sae_bench
    from pydantic import TypeAdapter
    from sae_bench.evals.absorption.eval_output import AbsorptionEvalOutput
    from sae_bench.evals.core.eval_output import CoreEvalOutput
    from sae_bench.evals.sparse_probing.eval_output import SparseProbingEvalOutput

    for eval_type_id, schema in (
        ("core", CoreEvalOutput),
        ("sparse_probing", SparseProbingEvalOutput),
        ("absorption_first_letter", AbsorptionEvalOutput),
    ):
        files = sorted((out / "saebench" / eval_type_id).glob("*_eval_results.json"))
        assert [f.name for f in files] == [f"dictlab_{n}_eval_results.json" for n in ("gemma", "relu", "topk-k4")]
        for file in files:
            TypeAdapter(schema).validate_json(file.read_text())  # SAEBench's own schema accepts it
    record = json.loads((out / "saebench" / "core" / "dictlab_topk-k4_eval_results.json").read_text())
    assert record["eval_result_metrics"]["sparsity"]["l0"] == pytest.approx(4.0)
    assert len(record["eval_result_details"]) == 48 and record["sae_cfg_dict"]["d_sae"] == 48

    figures = sorted(p.name for p in (out / "figures").glob("frontier-*.png"))
    assert "frontier-explained-variance.png" in figures and "frontier-sae-top-1-test-accuracy.png" in figures
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "L0 frontier" in report and "k-sparse probing" in report
    results = (out / "results.md").read_text(encoding="utf-8")
    assert "| topk-k4 | topk |" in results and "dense probe" in results


def test_a_killed_sweep_resumes_with_the_saes_it_had_not_finished(workspace: dict[str, Path]) -> None:
    out = workspace["root"] / "resume"
    first = run_evaluate(_request(workspace, out), echo=lambda _m: None)
    (out / "results" / "relu.json").unlink()  # as if killed while evaluating the second SAE
    (out / EVALUATION_FILE).unlink()
    lines: list[str] = []
    second = run_evaluate(_request(workspace, out), echo=lines.append)
    assert any(line.startswith("topk-k4: reusing") for line in lines)
    assert not any(line.startswith("relu: reusing") for line in lines)
    assert [e.metrics for e in second] == [e.metrics for e in first]


def _refused(request: EvaluateRequest, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run_evaluate(request, echo=lambda _m: None)
    assert not request.out.exists() or not any(request.out.rglob("*.json"))


def test_bad_input_is_refused_before_any_work(workspace: dict[str, Path], tmp_path: Path) -> None:
    cfg = DictionaryConfig(kind="sae", d_in=HIDDEN + 1, d_out=HIDDEN + 1, d_sae=8, activation="topk", k=2)
    wide = save_dictionary(SparseDictionary(cfg, torch.Generator().manual_seed(0)), tmp_path / "wide")
    _refused(_request(workspace, tmp_path / "a", runs=(workspace["topk-k4"], wide)), r"d_in = 33 .* width 32")
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "weights.bin").write_bytes(b"\0" * 16)
    _refused(_request(workspace, tmp_path / "b", runs=(unknown,)), "unknown")
    partial = tmp_path / "partial"
    shutil.copytree(workspace["gemma"], partial)
    params = dict(np.load(partial / "params.npz"))
    del params["threshold"]
    np.savez(partial / "params.npz", **params)
    _refused(_request(workspace, tmp_path / "c", runs=(partial,)), "threshold")
    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(workspace["store"], unlabelled)
    manifest = json.loads((unlabelled / MANIFEST_FILE).read_text())
    manifest["label_names"] = []
    (unlabelled / MANIFEST_FILE).write_text(json.dumps(manifest))
    _refused(_request(workspace, tmp_path / "d", store=unlabelled, evals=("probing",)), "label_names")
    with pytest.raises(ValueError, match="unknown evaluation"):
        _request(workspace, tmp_path / "e", evals=("core", "scr"))
