"""Run-folder weights: one file, or above a size limit several files with a Hugging Face-style index; both load
to the same dictionary bit for bit, and a tampered index is refused."""

import json
from pathlib import Path

import pytest
import torch

from dictlab.models import DictionaryConfig, RunFolderError, SparseDictionary, load_dictionary, save_dictionary
from dictlab.models.io import INDEX_FILE, WEIGHTS_FILE, weight_files


@pytest.fixture
def model() -> SparseDictionary:
    cfg = DictionaryConfig(kind="sae", d_in=16, d_out=16, d_sae=64, activation="jumprelu")
    return SparseDictionary(cfg, torch.Generator().manual_seed(0))


def _same(a: SparseDictionary, b: SparseDictionary) -> None:
    assert a.state_dict().keys() == b.state_dict().keys()
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name


def test_weights_above_the_limit_are_split_with_an_index(model: SparseDictionary, tmp_path: Path) -> None:
    save_dictionary(model, tmp_path, max_file_bytes=16 * 64 * 4)  # one W_enc or W_dec per file
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) >= 3 and not (tmp_path / WEIGHTS_FILE).exists()
    assert weight_files(tmp_path) == (INDEX_FILE, *files)
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in model.state_dict().values())
    _same(model, load_dictionary(tmp_path))
    save_dictionary(model, tmp_path)  # saved again whole: the split files go
    assert weight_files(tmp_path) == (WEIGHTS_FILE,) and not list(tmp_path.glob("weights-*"))
    _same(model, load_dictionary(tmp_path))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda index: index["weight_map"].update(W_enc="../../etc/passwd"), "not a weights-NNNNN-of-NNNNN"),
        (lambda index: index["weight_map"].pop("W_enc"), "does not match cfg.json"),
        (lambda index: index.pop("weight_map"), "has no 'weight_map' object"),
    ],
)
def test_a_tampered_index_is_refused(model: SparseDictionary, tmp_path: Path, tamper, message: str) -> None:
    save_dictionary(model, tmp_path, max_file_bytes=16 * 64 * 4)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    tamper(index)
    (tmp_path / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(RunFolderError, match=message):
        load_dictionary(tmp_path)


def test_a_missing_split_file_is_named(model: SparseDictionary, tmp_path: Path) -> None:
    save_dictionary(model, tmp_path, max_file_bytes=16 * 64 * 4)
    missing = weight_files(tmp_path)[1]
    (tmp_path / missing).unlink()
    with pytest.raises(RunFolderError, match=f"{missing} is missing"):
        load_dictionary(tmp_path)
