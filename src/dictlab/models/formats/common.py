"""What every importer of another library's SAE files shares: safe readers, key and shape checks, the build step.

Nothing here unpickles code: ``.pt`` files are read with ``torch.load(weights_only=True)`` (tensors, numbers,
strings and containers only), ``.npz`` with ``numpy.load(allow_pickle=False)`` and safetensors as they are.
"""

import math
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor

from dictlab.files.json_files import read_json_object
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary
from dictlab.validation import validation_message

Shape = tuple[int, ...]


class ForeignFormatError(ValueError):
    """A folder of another library's SAE is unknown, incomplete, inconsistent, or uses an option dictlab cannot
    represent; the message names the file and the key or field that is wrong."""


@dataclass(frozen=True)
class ForeignDictionary:
    """An imported dictionary and what its files say about it."""

    model: SparseDictionary
    """The dictionary as a dictlab module (float32, CPU, eval mode)."""
    metadata: dict[str, Any]
    """JSON metadata: ``source_format``, the peer's own config (``source_config``) and, where the files record
    them, ``model`` (the language model) and ``module`` (where the activations were read)."""
    files: tuple[str, ...]
    """Names of the files in the folder that define the dictionary (what an output's identity fingerprints)."""
    notes: tuple[str, ...] = field(default=())
    """How the peer's architecture was mapped, where it is not one-to-one."""


def read_config(path: Path, missing: str) -> dict[str, Any]:
    """Parse a JSON object file; errors name the file (``missing`` says what its absence means)."""
    return read_json_object(path, ForeignFormatError, missing)


def positive_int(raw: dict[str, Any], key: str, path: Path, default: int | None = None) -> int:
    """``raw[key]`` as an int > 0 (``default`` when absent and given); errors name ``path`` and ``key``."""
    if key not in raw:
        if default is not None:
            return default
        raise ForeignFormatError(f"{path} has no {key!r} key")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ForeignFormatError(f"{path}: {key!r} must be a positive integer, got {value!r}")
    return value


def boolean(raw: dict[str, Any], key: str, path: Path, default: bool) -> bool:
    """``raw[key]`` as a bool (``default`` when absent); errors name ``path`` and ``key``."""
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ForeignFormatError(f"{path}: {key!r} must be true or false, got {value!r}")
    return value


def load_torch_state(path: Path) -> dict[str, Any]:
    """A ``.pt`` file's top-level dict, read with ``torch.load(weights_only=True)`` on the CPU.

    A file that needs arbitrary unpickling (a pickled module or class) is refused, never executed.
    """
    if not path.is_file():
        raise ForeignFormatError(f"{path} is missing")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ForeignFormatError(
            f"{path} holds more than tensors and plain values, which dictlab does not unpickle "
            f"(torch.load weights_only=True refused it): {str(err).splitlines()[0]}"
        ) from err
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as err:
        raise ForeignFormatError(f"{path} is corrupt or not a torch file: {err}") from err
    if not isinstance(obj, dict):
        raise ForeignFormatError(f"{path} must hold a state dict (a dict of tensors), got {type(obj).__name__}")
    return obj


def load_safetensors(path: Path) -> dict[str, Tensor]:
    """Every tensor of a safetensors file, on the CPU."""
    if not path.is_file():
        raise ForeignFormatError(f"{path} is missing")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise ForeignFormatError(f"{path} is corrupt or unreadable: {err}") from err


def load_npz(path: Path) -> dict[str, Tensor]:
    """Every array of an ``.npz`` file as a tensor (``allow_pickle=False``: object arrays are refused)."""
    if not path.is_file():
        raise ForeignFormatError(f"{path} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: torch.from_numpy(np.array(data[key])) for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, TypeError) as err:
        raise ForeignFormatError(f"{path} is corrupt or not a numpy .npz file: {err}") from err


def take_tensors(
    state: dict[str, Any], expected: dict[str, Shape], path: Path, optional: tuple[str, ...] = ()
) -> dict[str, Tensor]:
    """Check that ``state`` holds exactly the keys of ``expected`` (plus any of ``optional``, ignored), each a
    finite floating-point tensor of the expected shape; return them as float32.

    Errors name ``path`` and the key: missing keys, unexpected keys, wrong shapes, dtypes or NaN/Inf.
    """
    missing = [key for key in expected if key not in state]
    if missing:
        raise ForeignFormatError(f"{path} has no tensor {missing[0]!r} (expected keys: {sorted(expected)})")
    extra = sorted(set(state) - set(expected) - set(optional))
    if extra:
        raise ForeignFormatError(f"{path} holds unexpected keys {extra} (expected: {sorted(expected)})")
    out = {}
    for key, shape in expected.items():
        value = state[key]
        if not isinstance(value, Tensor):
            raise ForeignFormatError(f"{path}: {key!r} must be a tensor, got {type(value).__name__}")
        if tuple(value.shape) != shape:
            raise ForeignFormatError(f"{path}: tensor {key!r} has shape {list(value.shape)}, expected {list(shape)}")
        if not value.is_floating_point():
            raise ForeignFormatError(f"{path}: tensor {key!r} has non-float dtype {value.dtype}")
        if not torch.isfinite(value).all():
            raise ForeignFormatError(f"{path}: tensor {key!r} contains NaN or Inf")
        out[key] = value.detach().to(device="cpu", dtype=torch.float32)
    return out


def scalar_int(state: dict[str, Any], key: str, path: Path) -> int:
    """A positive integer stored as a 0-d integer tensor or a plain int (e.g. a saved ``k`` buffer)."""
    value = state.get(key)
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_floating_point() and value.dtype != torch.bool:
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ForeignFormatError(f"{path}: {key!r} must be a positive integer, got {value!r}")
    return value


def jumprelu_threshold(threshold: Tensor) -> Tensor:
    """θ [d_sae] for dictlab's JumpReLU, whose codes are pre·1[pre > max(θ, 0)]: θ ≤ 0 becomes 0.

    That is what the peers compute for θ ≤ 0 too: SAELens and Gemma Scope gate ReLU(pre)·1[pre > θ], and
    dictionary_learning's JumpReluAutoEncoder takes ReLU(pre·1[pre > θ]); for θ ≤ 0 all three are ReLU(pre).
    """
    return threshold.clamp(min=0.0)


def unit_decoder(W_enc: Tensor, b_enc: Tensor, W_dec: Tensor, path: Path) -> tuple[Tensor, Tensor, Tensor]:
    """Rescale latent i by ‖W_dec[i]‖ so decoder rows have unit norm: ``W_enc[:, i]`` and ``b_enc[i]`` times the
    norm, ``W_dec[i]`` divided by it. For ReLU codes this leaves reconstructions unchanged (up to rounding) and
    multiplies latent i's code by its norm. ``W_enc: [d_in, d_sae]``, ``b_enc: [d_sae]``, ``W_dec: [d_sae, d_out]``."""
    norms = W_dec.norm(dim=1)
    if not (norms > 0).all():
        raise ForeignFormatError(f"{path}: {int((norms <= 0).sum())} decoder directions have norm 0")
    return W_enc * norms, b_enc * norms, W_dec / norms[:, None]


def build(cfg_fields: dict[str, Any], state: dict[str, Tensor], path: Path) -> SparseDictionary:
    """A float32 CPU :class:`SparseDictionary` in eval mode from config fields and its full state dict.

    ``path`` is the file whose contents describe the dictionary, named in errors.
    """
    try:
        cfg = DictionaryConfig(**cfg_fields)
    except ValidationError as err:
        raise ForeignFormatError(
            f"{path} describes a dictionary dictlab cannot build: {validation_message(err)}"
        ) from err
    model = SparseDictionary(cfg)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    # dictlab versions whose JumpReLU parameter is log θ rather than θ itself
    if "activation.threshold" in state and "activation.log_threshold" in expected:
        threshold = state.pop("activation.threshold")
        if not (threshold > 0).all():
            raise ForeignFormatError(f"{path}: {int((threshold <= 0).sum())} JumpReLU thresholds are <= 0")
        state["activation.log_threshold"] = threshold.double().log().float()
    found = {name: tuple(t.shape) for name, t in state.items()}
    if expected != found:  # an importer bug, not a user error, but say what differs
        raise ForeignFormatError(f"{path}: converted tensors {found} do not match the dictionary {expected}")
    model.load_state_dict(state)
    return model.eval()


def text_or_none(value: object) -> str | None:
    """``value`` when it is a non-empty string (metadata fields copied from a peer's config), else None."""
    return value if isinstance(value, str) and value else None


def plain_json(value: Any) -> Any:
    """``value`` with non-JSON leaves (tensors, non-finite floats) replaced by JSON values, for metadata."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, Tensor):
        return plain_json(value.tolist()) if value.numel() <= 64 else f"<tensor {list(value.shape)}>"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
