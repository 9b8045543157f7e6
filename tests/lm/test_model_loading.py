"""``--model`` takes an alias, a local folder, or a Hub id that is already in the local Hugging Face cache."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lm_fixtures import write_word_corpus

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def fake_hub_cache(model_dir: Path, cache: Path, repo_id: str = "testorg/tiny-llama") -> Path:
    """Lay ``model_dir`` out as the Hub cache does (models--org--name/snapshots/<commit>, refs/main); the snapshot."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / COMMIT
    shutil.copytree(model_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def test_hub_id_resolves_from_the_local_cache(tiny_lm_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from dictlab.lm.loading import load_language_model, resolve_model_dir

    snapshot = fake_hub_cache(tiny_lm_dir, tmp_path / "hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_model_dir("testorg/tiny-llama") == snapshot
    assert resolve_model_dir(f"testorg/tiny-llama@{COMMIT}") == snapshot
    lm = load_language_model("testorg/tiny-llama")
    assert lm.is_causal and lm.name == "testorg/tiny-llama" and lm.hidden_size == 32


def test_uncached_hub_id_is_a_clear_offline_error(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("transformers")
    from dictlab.lm.loading import resolve_model_dir

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(FileNotFoundError, match="nor a Hugging Face Hub id in the local cache") as error:
        resolve_model_dir("gpt2")
    assert str(tmp_path / "empty-cache") in str(error.value) and "never downloads" in str(error.value)


def test_capture_command_takes_a_cached_hub_id(tiny_lm_dir: Path, tmp_path: Path) -> None:
    fake_hub_cache(tiny_lm_dir, tmp_path / "hub")
    corpus = write_word_corpus(tmp_path / "words.txt", n_texts=40)
    out = tmp_path / "store"
    command = [sys.executable, "-c", "from dictlab.cli.main import main; main()", "capture"]
    args = ["--model", "testorg/tiny-llama", "--module", "layer:1", "--corpus", str(corpus), "--out", str(out)]
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub")}
    proc = subprocess.run([*command, *args, "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "testorg/tiny-llama" and manifest["complete"] and manifest["tokens_seen"] > 0
