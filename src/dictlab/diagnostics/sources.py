"""Where a diagnosed dictionary and its data come from: dictlab run folders, SAELens folders, other libraries'
SAE folders (sparsify, dictionary_learning, Gemma Scope, OpenAI), activation files."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import Tensor

from dictlab.data import LRBConfig, generate_lrb, load_activations
from dictlab.diagnostics.problem import DiagnosticsInputError
from dictlab.models import SparseDictionary, is_saelens_folder, load_dictionary, load_saelens, read_run_config
from dictlab.models.formats import ForeignFormatError, detect_format, load_foreign
from dictlab.models.io import weight_files
from dictlab.models.saelens import read_saelens_config
from dictlab.validation import validation_message

DICTIONARY_HELP = (
    "The dictionary: a dictlab run, SAELens, sparsify, dictionary_learning, OpenAI sparse_autoencoder or Gemma Scope "
    "folder (or the .pt / .npz file of the one-file formats)."
)
"""The help text of every command argument that :func:`load_source` reads."""


class RunMetadata(BaseModel):
    """The parts of a run folder's ``cfg.json`` metadata that diagnose and eval-in-model read, type-checked."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: str | None = None
    module: str | None = None
    method: str | None = None
    recipe: dict[str, Any] = Field(default_factory=dict)
    input_scale_folded: float = Field(default=1.0, gt=0)
    data: dict[str, Any] = Field(default_factory=dict)


def run_metadata(folder: Path, raw: dict[str, Any]) -> RunMetadata:
    """Validate ``raw`` (the metadata of ``folder``'s cfg.json); errors name the file and field."""
    try:
        meta = RunMetadata.model_validate(raw)
        coefficient = meta.recipe.get("sparsity_coefficient", 0.0)
        if isinstance(coefficient, bool) or not isinstance(coefficient, int | float) or coefficient < 0:
            raise ValueError(f"recipe.sparsity_coefficient must be a number >= 0, got {coefficient!r}")
    except ValidationError as err:
        raise DiagnosticsInputError(f"{folder / 'cfg.json'}: invalid metadata: {validation_message(err)}") from err
    except ValueError as err:
        raise DiagnosticsInputError(f"{folder / 'cfg.json'}: invalid metadata: {err}") from err
    return meta


@dataclass
class DictionarySource:
    """A loaded dictionary and what its folder says about it."""

    model: SparseDictionary
    format: str
    """'dictlab', 'saelens', or a foreign format: 'sparsify', 'dictionary_learning', 'openai', 'gemma_scope'."""
    path: Path
    metadata: dict[str, Any]
    training_coefficient: float | None
    """The ReLU L1 coefficient it was trained with, when the folder records it, in the units of the saved weights:
    a run trained on inputs scaled by s (``dictlab train --normalize``) and saved with s folded into its weights
    had coefficient c on the scaled data, which is c / s on the raw data."""
    files: tuple[str, ...] = ("cfg.json", "weights.safetensors")
    """The files in ``path`` that define the dictionary (what an output's identity fingerprints)."""

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "method": self.metadata.get("method")}


def load_source(folder: str | Path) -> DictionarySource:
    """Load a dictlab run folder (cfg.json + weights.safetensors), a SAELens folder (+ sae_weights.safetensors) or
    a dictionary saved by another library (:mod:`dictlab.models.formats`: sparsify, dictionary_learning, Gemma
    Scope, OpenAI sparse_autoencoder), whose format :func:`~dictlab.models.formats.detect_format` recognises.

    A one-file format may be given as its file (an OpenAI ``.pt``, a Gemma Scope ``.npz``): ``path`` is then the
    file's folder and ``files`` names the file. Foreign dictionaries record no training coefficient.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DiagnosticsInputError(f"{folder} does not exist")
    try:
        kind = detect_format(folder)
    except ForeignFormatError as err:
        raise DiagnosticsInputError(str(err)) from err
    if kind not in ("dictlab", "saelens"):
        foreign = load_foreign(folder, kind)
        where = folder.parent if folder.is_file() else folder
        return DictionarySource(foreign.model, kind, where, foreign.metadata, None, foreign.files)
    if not folder.is_dir():
        raise DiagnosticsInputError(f"{folder} is not a folder")
    if kind == "saelens" or is_saelens_folder(folder):
        model = load_saelens(folder)
        meta = read_saelens_config(folder).get("metadata") or {}
        if not isinstance(meta, dict):
            raise DiagnosticsInputError(f"{folder / 'cfg.json'}: 'metadata' must be a JSON object")
        return DictionarySource(model, "saelens", folder, meta, None, ("cfg.json", "sae_weights.safetensors"))
    model = load_dictionary(folder)
    raw = read_run_config(folder)["metadata"]
    meta = run_metadata(folder, raw)
    coefficient = meta.recipe.get("sparsity_coefficient") if model.cfg.activation == "relu" else None
    if coefficient is not None:
        coefficient = coefficient / meta.input_scale_folded
    return DictionarySource(model, "dictlab", folder, raw, coefficient, ("cfg.json", *weight_files(folder)))


def load_data(
    source: DictionarySource, data: str | Path | None, target: str | Path | None, key: str | None, max_rows: int
) -> tuple[Tensor, Tensor | None, str]:
    """(inputs, targets or None, description). Without ``data``, a bench run's test split is regenerated."""
    if data is not None:
        X_in = load_activations(data, key=key, max_rows=max_rows)
        X_out = None if target is None else load_activations(target, key=key, max_rows=max_rows)
        return X_in, X_out, str(data)
    lrb = source.metadata.get("data") or {}
    if not isinstance(lrb, dict) or lrb.get("generator") != "dictlab.lrb" or not isinstance(lrb.get("config"), dict):
        raise DiagnosticsInputError(
            f"{source.path} does not record the data it was trained on; pass --data ACTIVATIONS "
            "(.npy, .safetensors or .pt with rows = samples)"
        )
    try:
        lrb_config = LRBConfig.model_validate(lrb["config"])
    except ValidationError as err:
        raise DiagnosticsInputError(
            f"{source.path / 'cfg.json'}: invalid metadata data.config: {validation_message(err)}"
        ) from err
    dataset = generate_lrb(lrb_config)
    view = dataset.view(source.model.cfg.kind)
    X_in, X_out = view.materialize(dataset.codes("test")[:max_rows])
    return X_in, X_out, "LRB test split regenerated from the run's metadata"
