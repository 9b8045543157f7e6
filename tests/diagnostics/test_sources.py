"""A run folder's training coefficient is read in the units of its saved weights."""

from pathlib import Path

import pytest
import torch

from dictlab.diagnostics.sources import load_source
from dictlab.models import DictionaryConfig, SparseDictionary, save_dictionary


@pytest.mark.parametrize(("scale", "expected"), [(None, 1.5), (3.0, 0.5)])
def test_folded_input_scale_converts_the_coefficient(tmp_path: Path, scale: float | None, expected: float) -> None:
    model = SparseDictionary(DictionaryConfig(d_in=4, d_out=4, d_sae=8, activation="relu"), torch.Generator())
    metadata: dict[str, object] = {"recipe": {"sparsity_coefficient": 1.5}}
    if scale is not None:
        metadata["input_scale_folded"] = scale  # trained on 3·x: coefficient 1.5 there is 0.5 on raw x
    save_dictionary(model, tmp_path, metadata)
    assert load_source(tmp_path).training_coefficient == pytest.approx(expected)


def test_penalty_free_runs_have_no_coefficient(tmp_path: Path) -> None:
    model = SparseDictionary(DictionaryConfig(d_in=4, d_out=4, d_sae=8, activation="topk", k=2))
    save_dictionary(model, tmp_path, {"recipe": {"sparsity_coefficient": 0.0}})
    assert load_source(tmp_path).training_coefficient is None
