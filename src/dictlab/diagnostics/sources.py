"""Where a diagnosed dictionary and its data come from: dictlab run folders, SAELens folders, activation files."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from dictlab.data import LRBConfig, generate_lrb, load_activations
from dictlab.diagnostics.problem import DiagnosticsInputError
from dictlab.models import SparseDictionary, is_saelens_folder, load_dictionary, load_saelens, read_run_config
from dictlab.models.saelens import read_saelens_config


@dataclass
class DictionarySource:
    """A loaded dictionary and what its folder says about it."""

    model: SparseDictionary
    format: str
    """'dictlab' or 'saelens'."""
    path: Path
    metadata: dict[str, Any]
    training_coefficient: float | None
    """The ReLU L1 coefficient it was trained with, when the folder records it, in the units of the saved weights:
    a run trained on inputs scaled by s (``dictlab train --normalize``) and saved with s folded into its weights
    had coefficient c on the scaled data, which is c / s on the raw data."""

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "method": self.metadata.get("method")}


def load_source(folder: str | Path) -> DictionarySource:
    """Load a dictlab run folder (cfg.json + weights.safetensors) or a SAELens folder (+ sae_weights.safetensors)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DiagnosticsInputError(f"{folder} is not a folder")
    if is_saelens_folder(folder):
        model = load_saelens(folder)
        cfg = read_saelens_config(folder)
        return DictionarySource(model, "saelens", folder, cfg.get("metadata") or {}, None)
    model = load_dictionary(folder)
    meta = read_run_config(folder).get("metadata", {})
    recipe = meta.get("recipe", {})
    coefficient = recipe.get("sparsity_coefficient") if model.cfg.activation == "relu" else None
    scale = meta.get("input_scale_folded", 1.0)
    if coefficient is not None and isinstance(scale, int | float) and scale > 0:
        coefficient = coefficient / scale
    return DictionarySource(model, "dictlab", folder, meta, coefficient)


def load_data(
    source: DictionarySource, data: str | Path | None, target: str | Path | None, key: str | None, max_rows: int
) -> tuple[Tensor, Tensor | None, str]:
    """(inputs, targets or None, description). Without ``data``, a bench run's test split is regenerated."""
    if data is not None:
        X_in = load_activations(data, key=key, max_rows=max_rows)
        X_out = None if target is None else load_activations(target, key=key, max_rows=max_rows)
        return X_in, X_out, str(data)
    lrb = source.metadata.get("data", {})
    if lrb.get("generator") != "dictlab.lrb":
        raise DiagnosticsInputError(
            f"{source.path} does not record the data it was trained on; pass --data ACTIVATIONS "
            "(.npy, .safetensors or .pt with rows = samples)"
        )
    dataset = generate_lrb(LRBConfig.model_validate(lrb["config"]))
    view = dataset.view(source.model.cfg.kind)
    X_in, X_out = view.materialize(dataset.codes("test")[:max_rows])
    return X_in, X_out, "LRB test split regenerated from the run's metadata"
