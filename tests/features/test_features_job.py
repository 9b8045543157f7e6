"""`dictlab features` end to end on a real (tiny, random) Llama: capture with token ids, a dictionary on its store,
the features pass with the diagnosis, ablation effects, the browser and the Neuronpedia export; bad input leaves
nothing behind."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_helpers import run_dictlab
from dictlab.data.store import ActivationStore
from dictlab.data.store.manifest import MANIFEST_FILE
from dictlab.jobs.capture import run_capture
from dictlab.jobs.features import FEATURES_FILE, FeaturesRequest, read_features, run_features
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary
from dictlab.models.io import save_dictionary
from lm_fixtures import WORDS, capture_config, make_tiny_causal_lm

HIDDEN = 32


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("features")
    model = make_tiny_causal_lm(root / "model", hidden=HIDDEN)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(160):
        label = ["animals", "places"][i % 2]
        words = rng.choice(WORDS, size=int(rng.integers(3, 14)))
        lines.append(json.dumps({"text": " ".join(words), "label": label}))
    corpus = root / "corpus.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    store = root / "store"
    run_capture(capture_config(model, corpus, store, module=("layer:1",)), echo=lambda _m: None)
    cfg = DictionaryConfig(kind="sae", d_in=HIDDEN, d_out=HIDDEN, d_sae=48, activation="topk", k=4)
    dictionary = SparseDictionary(cfg, torch.Generator().manual_seed(0))
    run = save_dictionary(dictionary, root / "run", metadata={"module": "model.layers.1", "model": str(model)})
    return {"root": root, "model": model, "store": store, "run": run}


def test_features_job_writes_json_browser_and_neuronpedia(workspace: dict[str, Path]) -> None:
    out = workspace["root"] / "out"
    proc = run_dictlab(
        "features", str(workspace["run"]), "--store", str(workspace["store"]), "--out", str(out), "--diagnose",
        "--lam", "0.05", "--ablation-effects", "0,1", "--neuronpedia", "--no-progress", "--top", "6",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = read_features(out)
    store = ActivationStore(workspace["store"])
    assert report.source.rows == store.n_rows and len(report.latents) == 48
    live = [latent for latent in report.latents if not latent.dead]
    assert live and all(latent.diagnosis is not None for latent in report.latents)
    assert sum(latent.count for latent in report.latents) == 4 * store.n_rows  # TopK k = 4: four codes per row
    assert all(len(latent.logits_top) == 10 for latent in report.latents)  # the tiny Llama has an LM head
    assert {label for latent in live for label in [latent.best_label]} <= {"animals", "places"}
    # contexts are the captured texts, decoded by the model's tokenizer
    first = live[0].top[0]
    texts = [report.vocabulary[t] for t in first.tokens]
    assert all(isinstance(t, str) for t in texts) and first.values[first.centre] == first.value
    for latent in (0, 1):
        for context in report.latents[latent].top:
            assert context.ablation_effect is not None and len(context.ablation_effect) == len(context.tokens)
            assert all(v == 0 for v in context.ablation_effect[: context.centre] if v is not None)  # causal
    assert report.latents[2].top == [] or all(c.ablation_effect is None for c in report.latents[2].top)
    assert (out / "browser" / "index.html").is_file()
    assert sorted(p.name for p in (out / "neuronpedia").iterdir())[0].startswith("batch-")
    assert json.loads((out / FEATURES_FILE).read_text())["n_latents"] == 48


def _fails(request: FeaturesRequest, match: str) -> None:
    with pytest.raises((ValueError, OSError), match=match):
        run_features(request, echo=lambda _m: None)
    assert not request.out.exists() or not any(p.name == FEATURES_FILE for p in request.out.rglob("*"))


def test_bad_input_is_refused_and_leaves_nothing(workspace: dict[str, Path], tmp_path: Path) -> None:
    base = {"run": workspace["run"], "store": workspace["store"], "progress": False, "browser": False}
    _fails(FeaturesRequest(**base, out=tmp_path / "a", ablation_effects=(48,)), r"latents \[48\] outside 0\.\.47")
    old = tmp_path / "old-store"
    shutil.copytree(workspace["store"], old)
    manifest = json.loads((old / MANIFEST_FILE).read_text())
    manifest["tokens"] = False  # a store written before dictlab kept token ids
    (old / MANIFEST_FILE).write_text(json.dumps(manifest))
    shutil.rmtree(old / "tokens")
    shutil.rmtree(old / "token_index")
    _fails(FeaturesRequest(**base | {"store": old}, out=tmp_path / "b"), "keeps no token ids")
    cfg = DictionaryConfig(kind="sae", d_in=HIDDEN + 1, d_out=HIDDEN + 1, d_sae=8, activation="topk", k=2)
    wide = save_dictionary(SparseDictionary(cfg, torch.Generator().manual_seed(0)), tmp_path / "wide")
    _fails(FeaturesRequest(**base | {"run": wide}, out=tmp_path / "c"), "33-wide inputs")
    _fails(FeaturesRequest(**base, out=tmp_path / "d", first_row=10**7), "beyond the store's")
    empty = tmp_path / "empty-store"
    shutil.copytree(workspace["store"], empty)
    manifest = json.loads((empty / MANIFEST_FILE).read_text())
    manifest["shards"], manifest["modules"][0]["stats"] = [], {}
    (empty / MANIFEST_FILE).write_text(json.dumps(manifest))
    _fails(FeaturesRequest(**base | {"store": empty}, out=tmp_path / "e"), "holds no rows")
