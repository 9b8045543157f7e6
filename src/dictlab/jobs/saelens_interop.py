"""``dictlab export-saelens`` / ``import-saelens``: move SAEs between dictlab run folders and SAELens v6 folders."""

from pathlib import Path

from dictlab.models import load_dictionary, load_saelens, read_run_config, save_dictionary
from dictlab.models.saelens import read_saelens_config, save_saelens


def export_saelens(run: Path, out: Path, model_name: str | None = None, hook_name: str | None = None) -> Path:
    """Write the SAE of dictlab run folder ``run`` as a SAELens folder; model and hook names default to what the
    run recorded (the store's model and module)."""
    model = load_dictionary(run)
    meta = read_run_config(run).get("metadata", {})
    names = {"model_name": model_name or meta.get("model"), "hook_name": hook_name or meta.get("module")}
    return save_saelens(model, out, {k: v for k, v in names.items() if v})


def import_saelens(folder: Path, out: Path) -> Path:
    """Write the SAELens SAE in ``folder`` as a dictlab run folder (its model and hook names become metadata)."""
    model = load_saelens(folder)
    meta = read_saelens_config(folder).get("metadata") or {}
    metadata = {"imported_from": str(folder), "model": meta.get("model_name"), "module": meta.get("hook_name")}
    return save_dictionary(model, out, {k: v for k, v in metadata.items() if v})
