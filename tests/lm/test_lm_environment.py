"""The language-model stack imports (torchvision, if present and mismatched, breaks transformers with this torch)."""

import importlib.util

import pytest


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason='needs the lm extra: pip install ".[lm]"')
def test_transformers_model_classes_import() -> None:
    from transformers import AutoModel, AutoModelForCausalLM, PreTrainedModel  # noqa: F401


def test_missing_model_is_a_clear_error(tmp_path: object) -> None:
    from dictlab.lm.loading import resolve_model_dir

    with pytest.raises(FileNotFoundError, match="neither an offline alias"):
        resolve_model_dir(str(tmp_path))
