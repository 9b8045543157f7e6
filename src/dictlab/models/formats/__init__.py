"""Read SAEs saved by other libraries as dictlab dictionaries, without unpickling code.

- ``sparsify``: ``cfg.json`` + ``sae.safetensors``; TopK SAE or TopK transcoder.
- ``dictionary_learning``: ``config.json`` + ``ae.pt``; ReLU (AutoEncoder, AutoEncoderNew), TopK, BatchTopK,
  Matryoshka BatchTopK, JumpReLU.
- ``openai``: one ``*.pt`` state dict; ReLU.
- ``gemma_scope``: ``params.npz`` or ``params.safetensors``; JumpReLU SAE or transcoder.

:func:`detect_format` names the format of any dictionary folder (dictlab's own and SAELens's included) and
:func:`dictionary_files` its defining files; :func:`load_foreign` loads the four foreign ones. Each format's
module documents its mapping.
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dictlab.models.formats import dictionary_learning, gemma_scope, openai, sparsify
from dictlab.models.formats.common import ForeignDictionary, ForeignFormatError
from dictlab.models.io import CONFIG_FILE, INDEX_FILE, WEIGHTS_FILE, weight_files
from dictlab.models.saelens import SAELENS_WEIGHTS_FILE, read_saelens_config

FOREIGN_FORMATS: dict[str, Callable[[Path], ForeignDictionary]] = {
    "sparsify": sparsify.load,
    "dictionary_learning": dictionary_learning.load,
    "gemma_scope": gemma_scope.load,
    "openai": openai.load,
}
"""Loaders of the formats :func:`load_foreign` reads, by name."""

_DETECTORS: dict[str, Callable[[Path], bool]] = {
    "sparsify": sparsify.detect,
    "dictionary_learning": dictionary_learning.detect,
    "gemma_scope": gemma_scope.detect,
    "openai": openai.detect,  # last: "one .pt file" is the weakest evidence
}

EXPECTED_FILES = (
    "dictlab: cfg.json + weights.safetensors; SAELens: cfg.json + sae_weights.safetensors; sparsify: cfg.json + "
    "sae.safetensors; dictionary_learning: config.json + ae.pt; Gemma Scope: params.npz or params.safetensors; "
    "OpenAI sparse_autoencoder: one .pt file"
)

__all__ = [
    "EXPECTED_FILES",
    "FOREIGN_FORMATS",
    "ForeignDictionary",
    "ForeignFormatError",
    "detect_format",
    "dictionary_files",
    "load_foreign",
]


def _dictlab_or_saelens(folder: Path) -> str | None:
    if (folder / WEIGHTS_FILE).is_file() or (folder / INDEX_FILE).is_file():
        return "dictlab"
    if (folder / SAELENS_WEIGHTS_FILE).is_file():
        return "saelens"
    if not (folder / CONFIG_FILE).is_file():
        return None
    try:
        raw: dict[str, Any] = read_saelens_config(folder)
    except ValueError:
        return None  # unreadable cfg.json: let the other detectors look, then report the folder as unknown
    if "dictionary" in raw:
        return "dictlab"
    if "architecture" in raw:
        return "saelens"
    return None


def detect_format(path: str | Path) -> str:
    """The format of the dictionary at ``path``: ``"dictlab"``, ``"saelens"`` or one of :data:`FOREIGN_FORMATS`.

    ``path`` is a folder, or a single file for the one-file formats (an OpenAI ``.pt``, a Gemma Scope ``.npz``).
    A folder counts as a format when it holds that format's weights file or a config only that format writes, so
    an incomplete folder is named (and its loader then says which file is missing). Unknown → ForeignFormatError.
    """
    path = Path(path)
    if not path.exists():
        raise ForeignFormatError(f"{path} does not exist")
    if path.is_dir() and (found := _dictlab_or_saelens(path)) is not None:
        return found
    for name, detect in _DETECTORS.items():
        if detect(path):
            return name
    raise ForeignFormatError(f"{path} holds no dictionary dictlab can read; expected {EXPECTED_FILES}")


def dictionary_files(path: str | Path) -> tuple[Path, tuple[str, ...]]:
    """(folder, names of the files in it that define the dictionary at ``path``), without loading it: what an
    output's identity fingerprints. A one-file format given as its file gives (its folder, (its name,)).
    Only names of files that exist are returned; an unknown format raises ForeignFormatError."""
    path = Path(path)
    name = detect_format(path)
    if path.is_file():
        return path.parent, (path.name,)
    if name == "dictlab":
        names: tuple[str, ...] = (CONFIG_FILE, *weight_files(path))
    elif name == "saelens":
        names = (CONFIG_FILE, SAELENS_WEIGHTS_FILE)
    elif name == "sparsify":
        names = (sparsify.CONFIG_FILE, sparsify.WEIGHTS_FILE)
    elif name == "dictionary_learning":
        names = (dictionary_learning.CONFIG_FILE, dictionary_learning.WEIGHTS_FILE)
    elif name == "gemma_scope":
        names = tuple(n for n in gemma_scope.WEIGHT_FILES if (path / n).is_file())
    else:
        names = (openai.weights_file(path).name,)
    return path, tuple(n for n in names if (path / n).is_file())


def load_foreign(path: str | Path, format: str | None = None) -> ForeignDictionary:
    """Load the dictionary at ``path`` saved by another library (``format`` detected when None).

    Returns the dictlab module (float32, CPU, eval mode), its metadata and the names of its defining files
    (relative to ``path``, or to its folder when ``path`` is a file). dictlab and SAELens folders are refused
    here: read them with :func:`dictlab.models.load_dictionary` / :func:`dictlab.models.load_saelens`.
    """
    path = Path(path)
    name = detect_format(path) if format is None else format
    if name not in FOREIGN_FORMATS:
        raise ForeignFormatError(
            f"{path} is a {name} folder, not a foreign format ({', '.join(FOREIGN_FORMATS)})"
            if name in ("dictlab", "saelens")
            else f"unknown format {name!r}; dictlab reads {', '.join(FOREIGN_FORMATS)}"
        )
    if path.is_file() and name in ("sparsify", "dictionary_learning"):
        raise ForeignFormatError(f"{path} is a file; a {name} dictionary is a folder")
    return FOREIGN_FORMATS[name](path)
