"""Read and write SAELens v6 SAE folders: ``cfg.json`` (``SAEConfig.to_dict()``) + ``sae_weights.safetensors``.

Supported architectures: ``standard`` (ReLU), ``topk`` and ``jumprelu`` (SAELens also saves BatchTopK SAEs as
``jumprelu`` with a threshold). Tensors use the same orientation as dictlab: ``W_enc [d_in, d_sae]``,
``W_dec [d_sae, d_in]``, ``b_enc [d_sae]``, ``b_dec [d_in]`` and, for ``jumprelu``, ``threshold [d_sae]``.
"""

import json
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

import dictlab
from dictlab.files.atomic import atomic_write_text
from dictlab.files.json_files import read_json_object
from dictlab.files.tensors import save_safetensors
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary
from dictlab.validation import validation_message

SAELENS_CONFIG_FILE = "cfg.json"
SAELENS_WEIGHTS_FILE = "sae_weights.safetensors"
SUPPORTED_ARCHITECTURES = ("standard", "topk", "jumprelu")
_BASE_TENSORS = ("W_enc", "W_dec", "b_enc", "b_dec")


class SAELensFormatError(ValueError):
    """A SAELens folder is missing a file, is corrupt or inconsistent, or uses a feature dictlab cannot represent."""


def is_saelens_folder(folder: str | Path) -> bool:
    """Whether ``folder`` holds both ``cfg.json`` and ``sae_weights.safetensors``."""
    folder = Path(folder)
    return (folder / SAELENS_CONFIG_FILE).is_file() and (folder / SAELENS_WEIGHTS_FILE).is_file()


def read_saelens_config(folder: str | Path) -> dict[str, Any]:
    """Parse ``cfg.json`` of a SAELens folder as a dict, with errors that name the file.

    Only the JSON itself is checked here; :func:`load_saelens` validates the keys it needs.
    """
    return read_json_object(Path(folder) / SAELENS_CONFIG_FILE, SAELensFormatError, "not a SAELens folder")


def load_saelens(folder: str | Path, device: str | torch.device = "cpu") -> SparseDictionary:
    """Rebuild a SAELens v6 SAE as a dictlab :class:`SparseDictionary` of kind ``sae`` (float32).

    ``standard`` becomes activation ``relu``, ``topk`` becomes ``topk`` with the same k, and ``jumprelu`` becomes
    ``jumprelu`` with the same thresholds (SAELens gates on ``threshold.relu()``, dictlab on max(θ, 0): a
    threshold ≤ 0 is a plain ReLU gate in both). A ``topk`` SAE with ``rescale_acts_by_decoder_norm`` (top-k
    of ``pre·‖W_dec[i]‖``, decoded as ``codes / ‖W_dec[i]‖ @ W_dec``) is folded into plain TopK: column i of
    ``W_enc`` and ``b_enc[i]`` are multiplied by ‖W_dec[i]‖ and row ``W_dec[i]`` is divided by it, which gives the
    same codes and reconstructions (up to float rounding) with unit-norm decoder rows; decoder rows of norm 0 are
    refused. Only ``normalize_activations: "none"`` is supported. Keys SAELens defaults (``apply_b_dec_to_input``,
    ``normalize_activations``, ``reshape_activations``) take SAELens's defaults when absent; ``reshape_activations:
    "hook_z"`` only reshapes [.., n_heads, d_head] inputs, so the model applies to the flattened vectors.
    The raw config stays available through :func:`read_saelens_config`.
    """
    folder = Path(folder)
    cfg_path = folder / SAELENS_CONFIG_FILE
    raw = read_saelens_config(folder)
    if "dictionary" in raw and "architecture" not in raw:
        raise SAELensFormatError(f"{cfg_path} is a dictlab run config, not SAELens: use dictlab.load_dictionary")
    for key in ("architecture", "d_in", "d_sae"):
        if key not in raw:
            raise SAELensFormatError(f"{cfg_path} has no {key!r} key")
    architecture = raw["architecture"]
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise SAELensFormatError(
            f"{cfg_path}: unsupported architecture {architecture!r}; dictlab reads {list(SUPPORTED_ARCHITECTURES)}"
        )
    normalize = raw.get("normalize_activations", "none")
    if normalize != "none":
        raise SAELensFormatError(
            f"{cfg_path}: unsupported normalize_activations {normalize!r}; only 'none' is supported "
            "(fold a constant scaling factor into the weights first)"
        )
    reshape = raw.get("reshape_activations", "none")
    if reshape not in ("none", "hook_z"):
        raise SAELensFormatError(f"{cfg_path}: unsupported reshape_activations {reshape!r}")
    apply_b_dec = raw.get("apply_b_dec_to_input", True)
    if not isinstance(apply_b_dec, bool):
        raise SAELensFormatError(f"{cfg_path}: apply_b_dec_to_input must be a boolean, got {apply_b_dec!r}")
    d_in, d_sae = _int_key(raw, "d_in", cfg_path), _int_key(raw, "d_sae", cfg_path)
    rescale = False
    k = None
    if architecture == "topk":
        if "k" not in raw:
            raise SAELensFormatError(f"{cfg_path} has no 'k' key (needed by architecture 'topk')")
        k = _int_key(raw, "k", cfg_path)
        rescale = raw.get("rescale_acts_by_decoder_norm", False)
        if not isinstance(rescale, bool):
            raise SAELensFormatError(f"{cfg_path}: rescale_acts_by_decoder_norm must be a boolean, got {rescale!r}")
    activation = {"standard": "relu", "topk": "topk", "jumprelu": "jumprelu"}[architecture]
    try:
        cfg = DictionaryConfig(
            kind="sae", d_in=d_in, d_out=d_in, d_sae=d_sae, activation=activation, k=k, apply_b_dec_to_input=apply_b_dec
        )
    except ValidationError as err:
        raise SAELensFormatError(f"{cfg_path} describes an invalid dictionary: {validation_message(err)}") from err

    weights_path = folder / SAELENS_WEIGHTS_FILE
    tensors = _read_weights(weights_path, architecture, d_in, d_sae)
    if rescale:
        norms = tensors["W_dec"].norm(dim=-1)
        if not (norms > 0).all():
            raise SAELensFormatError(
                f"{weights_path}: {int((norms <= 0).sum())} decoder rows have norm 0, which "
                "rescale_acts_by_decoder_norm cannot divide by"
            )
        tensors["W_enc"] = tensors["W_enc"] * norms
        tensors["b_enc"] = tensors["b_enc"] * norms
        tensors["W_dec"] = tensors["W_dec"] / norms[:, None]
    state = {name: tensors[name] for name in _BASE_TENSORS}
    if architecture == "jumprelu":
        state["activation.threshold"] = tensors["threshold"]
    model = SparseDictionary(cfg)
    model.load_state_dict(state)
    return model.to(device)


def save_saelens(model: SparseDictionary, folder: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Export an SAE as a SAELens v6 folder; ``metadata`` (e.g. model_name, hook_name) goes to ``cfg.json``.

    Activations map to SAELens architectures: relu → ``standard``, topk → ``topk`` (with
    ``rescale_acts_by_decoder_norm: false``), and every activation with an inference threshold → ``jumprelu`` with
    that threshold: JumpReLU's max(θ, 0), and BatchTopK's and Matryoshka's eval-mode threshold buffer on
    every latent (which must be set by training), which reproduces dictlab's eval-mode codes (the nested prefixes
    of a Matryoshka dictionary shape its training only). Transcoders and crosscoders have no SAELens SAE equivalent
    and are refused. Weights are float32; both files are written
    atomically, weights first.
    """
    folder = Path(folder)
    sae_cfg = saelens_config(model, metadata, folder)
    tensors = {name: getattr(model, name).detach() for name in _BASE_TENSORS}
    threshold = model.activation.inference_threshold()
    if sae_cfg["architecture"] == "jumprelu" and threshold is not None:  # saelens_config checked it is set
        tensors["threshold"] = threshold
    cfg_text = json.dumps(sae_cfg, indent=2) + "\n"  # serialize first: bad metadata must not leave half a folder
    cfg_path = folder / SAELENS_CONFIG_FILE
    if cfg_path.is_file():
        try:
            existing = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            existing = None
        if isinstance(existing, dict) and "dictionary" in existing:
            raise SAELensFormatError(f"refusing to overwrite {cfg_path}: it belongs to a dictlab run folder")
    folder.mkdir(parents=True, exist_ok=True)
    out = {name: t.to(device="cpu", dtype=torch.float32).contiguous() for name, t in tensors.items()}
    save_safetensors(out, folder / SAELENS_WEIGHTS_FILE, {"format": "pt", "dictlab_version": dictlab.__version__})
    atomic_write_text(cfg_path, cfg_text)
    return folder


def saelens_config(
    model: SparseDictionary, metadata: dict[str, Any] | None = None, folder: str | Path | None = None
) -> dict[str, Any]:
    """The SAELens v6 ``cfg.json`` dict that :func:`save_saelens` writes for ``model`` (architecture from the
    activation as described there); ``folder`` only names the destination in errors."""
    where = f" to SAELens {folder}" if folder is not None else " to SAELens"
    cfg = model.cfg
    if cfg.kind != "sae":
        raise SAELensFormatError(f"cannot export a {cfg.kind}{where}: only kind 'sae' is supported")
    extra: dict[str, Any] = {}
    if cfg.activation == "topk":
        architecture = "topk"
        extra = {"k": cfg.k, "rescale_acts_by_decoder_norm": False}
    elif cfg.activation == "relu":
        architecture = "standard"
    elif cfg.activation_class.has_inference_threshold:
        if model.activation.inference_threshold() is None:
            raise SAELensFormatError(
                f"cannot export {cfg.activation}{where}: its inference threshold is unset; train the model first"
            )
        architecture = "jumprelu"
    else:
        raise SAELensFormatError(f"cannot export activation {cfg.activation!r}{where}")
    return {
        "d_in": cfg.d_in,
        "d_sae": cfg.d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": dict(metadata or {}),
        **extra,
        "architecture": architecture,
    }


def _int_key(raw: dict[str, Any], key: str, cfg_path: Path) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SAELensFormatError(f"{cfg_path}: {key!r} must be a positive integer, got {value!r}")
    return value


def _read_weights(path: Path, architecture: str, d_in: int, d_sae: int) -> dict[str, Tensor]:
    """Load and validate the weights file: names, shapes, float dtype, finiteness; returns float32 CPU tensors."""
    if not path.is_file():
        raise SAELensFormatError(f"{path} is missing")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise SAELensFormatError(f"{path} is corrupt or unreadable: {err}") from err
    expected = {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_in), "b_enc": (d_sae,), "b_dec": (d_in,)}
    if architecture == "jumprelu":
        expected["threshold"] = (d_sae,)
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    if found != expected:
        raise SAELensFormatError(
            f"{path} does not match {SAELENS_CONFIG_FILE} (architecture {architecture!r}, d_in={d_in}, "
            f"d_sae={d_sae}): expected {expected}, found {found}"
        )
    for name, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise SAELensFormatError(f"{path}: tensor {name!r} has non-float dtype {tensor.dtype}")
        if not torch.isfinite(tensor).all():
            raise SAELensFormatError(f"{path}: tensor {name!r} contains NaN or Inf")
    return {name: t.to(torch.float32) for name, t in tensors.items()}
