"""Gemma Scope JumpReLU SAEs and transcoders: ``params.npz`` (Gemma Scope) or ``params.safetensors`` (Gemma Scope 2).

Keys (Lieberum et al., arXiv 2408.05147, §3; SAELens ``sae_lens/loading/pretrained_sae_loaders.py``
``gemma_2_sae_huggingface_loader`` / ``gemma_3_sae_huggingface_loader``, sae-lens 6.54): ``W_enc [d_in, d_sae]``,
``W_dec [d_sae, d_out]``, ``b_enc [d_sae]``, ``b_dec [d_out]``, ``threshold [d_sae]`` (Gemma Scope 2 spells the
weights ``w_enc`` / ``w_dec``). The SAE is ``f = JumpReLU_θ(x·W_enc + b_enc)``, ``x̂ = f·W_dec + b_dec``: b_dec is
not subtracted before encoding.
"""

from pathlib import Path

from torch import Tensor

from dictlab.models.formats.common import (
    ForeignDictionary,
    ForeignFormatError,
    build,
    jumprelu_threshold,
    load_npz,
    load_safetensors,
    take_tensors,
)

WEIGHT_FILES = ("params.npz", "params.safetensors")
KEYS = ("W_enc", "W_dec", "b_enc", "b_dec", "threshold")


def weights_file(path: Path) -> Path:
    """The parameter file: ``path`` itself, or the one of ``params.npz`` / ``params.safetensors`` in it."""
    if path.is_file():
        return path
    found = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
    if len(found) != 1:
        raise ForeignFormatError(
            f"{path} must hold exactly one of {list(WEIGHT_FILES)}, found {[p.name for p in found]}"
        )
    return found[0]


def detect(path: Path) -> bool:
    """Whether ``path`` is an ``.npz`` file or a folder with ``params.npz`` or ``params.safetensors``."""
    if path.is_file():
        return path.suffix == ".npz"
    return any((path / name).is_file() for name in WEIGHT_FILES)


def _canonical(state: dict[str, Tensor], path: Path) -> dict[str, Tensor]:
    """Keys renamed ``w_enc`` → ``W_enc``, ``w_dec`` → ``W_dec`` (as SAELens does); a clash is an error."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        name = "W_" + key[2:] if key.startswith("w_") else key
        if name in out:
            raise ForeignFormatError(f"{path} holds both {key!r} and {name!r}")
        out[name] = value
    return out


def load(path: Path) -> ForeignDictionary:
    """Rebuild a Gemma Scope SAE as a dictlab ``sae`` (``d_out = d_in``) or, when ``W_dec`` is wider or narrower
    than ``W_enc``, a ``transcoder``; activation ``jumprelu`` with the same threshold (SAELens's gate
    ``ReLU(pre)·1[pre > θ]`` equals dictlab's ``pre·1[pre > max(θ, 0)]``, so θ ≤ 0 is stored as 0) and
    ``apply_b_dec_to_input`` off. A width-preserving Gemma Scope transcoder cannot be told from
    an SAE by its file and loads as kind ``sae`` with the same maths (b_dec is never subtracted from the input).

    Refused: Gemma Scope 2's ``affine_skip_connection`` (x̂ gains x·W_skip) and a ``scaling_factor`` other than
    all ones (SAELens's ``finetuning_scaling_factor``); an all-ones ``scaling_factor`` is dropped, as SAELens does.
    """
    weights = weights_file(path)
    state = _canonical(load_npz(weights) if weights.suffix == ".npz" else load_safetensors(weights), weights)
    if "affine_skip_connection" in state:
        raise ForeignFormatError(
            f"{weights} holds 'affine_skip_connection' (a skip transcoder), which dictlab's dictionary cannot represent"
        )
    scaling = state.pop("scaling_factor", None)
    if scaling is not None and not bool((scaling == 1).all()):
        raise ForeignFormatError(f"{weights}: unsupported 'scaling_factor' other than 1 (a fine-tuning scale)")
    for key in KEYS:
        if key not in state:
            raise ForeignFormatError(f"{weights} has no tensor {key!r} (expected keys: {list(KEYS)})")
    if state["W_enc"].dim() != 2 or state["W_dec"].dim() != 2:
        raise ForeignFormatError(
            f"{weights}: 'W_enc' and 'W_dec' must be 2-d, got {list(state['W_enc'].shape)} and "
            f"{list(state['W_dec'].shape)}"
        )
    d_in, d_sae = state["W_enc"].shape
    d_out = state["W_dec"].shape[1]
    t = take_tensors(
        state,
        {"W_enc": (d_in, d_sae), "W_dec": (d_sae, d_out), "b_enc": (d_sae,), "b_dec": (d_out,), "threshold": (d_sae,)},
        weights,
    )
    kind = "sae" if d_in == d_out else "transcoder"
    model = build(
        {
            "kind": kind,
            "d_in": d_in,
            "d_out": d_out,
            "d_sae": d_sae,
            "activation": "jumprelu",
            "apply_b_dec_to_input": False,
        },
        {
            "W_enc": t["W_enc"].contiguous(),
            "W_dec": t["W_dec"].contiguous(),
            "b_enc": t["b_enc"],
            "b_dec": t["b_dec"],
            "activation.threshold": jumprelu_threshold(t["threshold"]),
        },
        weights,
    )
    metadata = {"source_format": "gemma_scope", "source_config": {"file": weights.name}}
    return ForeignDictionary(model, metadata, (weights.name,))
