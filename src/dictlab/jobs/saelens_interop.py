"""``dictlab export-saelens`` / ``import-saelens``: move SAEs between dictlab run folders and SAELens v6 folders.

Both claim their output folder like every writer (:mod:`dictlab.outputs.claim`): a folder another command or
another source wrote is refused unless ``overwrite``; the files are staged and moved into place at the end.
"""

from pathlib import Path

from dictlab.diagnostics.sources import load_source
from dictlab.models import load_saelens, save_dictionary
from dictlab.models.io import CONFIG_FILE
from dictlab.models.saelens import (
    SAELENS_CONFIG_FILE,
    SAELENS_WEIGHTS_FILE,
    SAELensFormatError,
    read_saelens_config,
    save_saelens,
)
from dictlab.outputs import RunIdentity, claim_output, folder_fingerprints, staged


def _identity(command: str, source: Path, files: tuple[str, ...], config: dict[str, str | None]) -> RunIdentity:
    inputs = folder_fingerprints(source, files)
    return RunIdentity(command=command, config=config, inputs=inputs, paths={"source": str(source)})


def _text(value: object, what: str, folder: Path) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{folder / CONFIG_FILE}: {what} must be a string, got {type(value).__name__}")


def export_saelens(
    run: Path, out: Path, model_name: str | None = None, hook_name: str | None = None, overwrite: bool = False
) -> Path:
    """Write the SAE in ``run`` (a dictlab run or any folder :func:`~dictlab.diagnostics.sources.load_source`
    reads: SAELens, sparsify, dictionary_learning, OpenAI, Gemma Scope) as a SAELens folder; model and hook names
    default to what the folder recorded (the store's model and module)."""
    source = load_source(run)
    model, meta = source.model, source.metadata
    names = {
        "model_name": model_name or _text(meta.get("model"), "metadata.model", run),
        "hook_name": hook_name or _text(meta.get("module") or meta.get("hook_name"), "metadata.module", run),
    }
    identity = _identity("export-saelens", source.path, source.files, names)
    with claim_output(out, identity, overwrite) as folder, staged(folder) as stage:
        save_saelens(model, stage, {k: v for k, v in names.items() if v})
    return out


def import_saelens(folder: Path, out: Path, overwrite: bool = False) -> Path:
    """Write the SAELens SAE in ``folder`` as a dictlab run folder (its model and hook names become metadata)."""
    model = load_saelens(folder)
    meta = read_saelens_config(folder).get("metadata") or {}
    if not isinstance(meta, dict):
        raise SAELensFormatError(f"{folder / SAELENS_CONFIG_FILE}: 'metadata' must be a JSON object")
    metadata = {
        "imported_from": str(folder),
        "model": _text(meta.get("model_name"), "metadata.model_name", folder),
        "module": _text(meta.get("hook_name"), "metadata.hook_name", folder),
    }
    identity = _identity("import-saelens", folder, (SAELENS_CONFIG_FILE, SAELENS_WEIGHTS_FILE), {})
    with claim_output(out, identity, overwrite) as run, staged(run) as stage:
        save_dictionary(model, stage, {k: v for k, v in metadata.items() if v})
    return out
