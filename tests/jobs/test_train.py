"""dictlab train --store on a capture of a real (tiny, locally built) transformers model: streamed training at raw
scale, resume, export to SAELens and back, and in-model evaluation of the export."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli_helpers import run_dictlab
from dictlab.cli.main import cli
from dictlab.data.store import ActivationStore
from dictlab.jobs.capture import run_capture
from lm_fixtures import capture_config


def test_train_on_store_streams_and_saves_a_raw_scale_dictionary(
    tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    run_capture(capture_config(tiny_lm_dir, corpus_file, tmp_path / "store", module=("layer:1",)), echo=lambda _: None)
    store = ActivationStore(tmp_path / "store")
    assert store.n_rows > 4 * 1024
    args = [
        "train",
        "--store",
        str(tmp_path / "store"),
        "--out",
        str(tmp_path / "run"),
        "--batch-size",
        "256",
        "--chunk-rows",
        "256",
        "--buffer-rows",
        "1024",
        "--epochs",
        "4",
        "--k",
        "4",
        "--expansion",
        "4",
        "--no-progress",
    ]
    result = run_dictlab(*args)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["buffer_mib"] < metrics["store_mib"] / 3  # streamed, never all in memory
    assert metrics["holdout"]["l0"] == pytest.approx(4.0) and metrics["holdout"]["fvu"] < 0.5
    from dictlab.metrics.reconstruction import fvu
    from dictlab.models import load_dictionary

    model = load_dictionary(tmp_path / "run")
    raw = torch.from_numpy(store.read(0, store.n_rows))
    with torch.no_grad():
        assert fvu(raw, model(raw)) < 0.5  # the saved weights work on raw (unscaled) activations
    assert json.loads((tmp_path / "run" / "cfg.json").read_text())["metadata"]["input_scale_folded"] > 0
    rerun = run_dictlab(*args)  # resumes from its finished checkpoint instead of training again
    assert rerun.returncode == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["steps"] == metrics["steps"]


def test_trained_run_exports_to_saelens_and_evaluates_in_its_model(
    tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    from dictlab.jobs.train import StoreTrainRequest, train_on_store
    from dictlab.models import load_dictionary

    run_capture(capture_config(tiny_lm_dir, corpus_file, tmp_path / "store", module=("layer:0",)), echo=lambda _: None)
    train_on_store(
        StoreTrainRequest(
            store=tmp_path / "store",
            out=tmp_path / "run",
            batch_size=256,
            chunk_rows=256,
            buffer_rows=1024,
            epochs=2,
            k=4,
            expansion=2,
            progress=False,
        ),
        echo=lambda _: None,
    )
    runner = CliRunner()
    exported = runner.invoke(cli, ["export-saelens", str(tmp_path / "run"), str(tmp_path / "saelens")])
    assert exported.exit_code == 0, exported.output
    saelens_cfg = json.loads((tmp_path / "saelens" / "cfg.json").read_text())
    assert saelens_cfg["metadata"] == {"model_name": str(tiny_lm_dir), "hook_name": "model.layers.0"}
    imported = runner.invoke(cli, ["import-saelens", str(tmp_path / "saelens"), str(tmp_path / "back")])
    assert imported.exit_code == 0, imported.output
    original, back = load_dictionary(tmp_path / "run"), load_dictionary(tmp_path / "back")
    for name, tensor in original.state_dict().items():
        assert torch.equal(back.state_dict()[name], tensor), name
    # In-model evaluation from the exported folder alone: model and module come from its metadata.
    result = runner.invoke(
        cli,
        [
            "eval-in-model",
            str(tmp_path / "saelens"),
            "--corpus",
            str(corpus_file),
            "--max-texts",
            "24",
            "--no-progress",
            "--out",
            str(tmp_path / "eval.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["module"] == "model.layers.0" and report["tokens"] > 100
    # The tiny model is untrained, so only the KL has a sign to check (the known-answer CE checks are in
    # tests/lm/test_in_model_eval.py).
    assert report["kl"] > 0 and np.isfinite(report["ce_increase"]) and report["l0"] == pytest.approx(4.0)
