"""OpenAI sparse_autoencoder state dicts: one ``.pt`` file of ``Autoencoder.state_dict()``.

From ``openai/sparse_autoencoder`` ``sparse_autoencoder/model.py`` (commit 4965b94): ``latents = activation(
encoder(x − pre_bias) + latent_bias)``, ``recons = decoder(latents) + pre_bias``, with ``pre_bias [d]``,
``encoder.weight [n_latents, d]`` (no bias), ``latent_bias [n_latents]``, ``decoder.weight [d, n_latents]``, the
statistics buffers ``stats_last_nonzero``, ``latents_activation_frequency``, ``latents_mean_square`` (each
``[n_latents]``), and two non-tensor entries its ``state_dict`` adds: ``activation`` (the class name, ``"ReLU"``
or ``"TopK"``) and ``activation_state_dict`` (TopK: ``{"k": int, "postact_fn": "ReLU"}``).
"""

from pathlib import Path
from typing import Any

from dictlab.models.formats.common import (
    ForeignDictionary,
    ForeignFormatError,
    build,
    load_torch_state,
    plain_json,
    take_tensors,
)

SUFFIX = ".pt"
STATS_BUFFERS = ("stats_last_nonzero", "latents_activation_frequency", "latents_mean_square")


def weights_file(path: Path) -> Path:
    """The state-dict file: ``path`` itself, or the only ``*.pt`` file in the folder ``path``."""
    if path.is_file():
        return path
    found = sorted(p for p in path.glob(f"*{SUFFIX}") if p.is_file())
    if len(found) != 1:
        raise ForeignFormatError(
            f"{path} must hold exactly one {SUFFIX} file (an OpenAI sparse_autoencoder state dict), found "
            f"{[p.name for p in found]}"
        )
    return found[0]


def detect(path: Path) -> bool:
    """Whether ``path`` is a ``.pt`` file or a folder with exactly one ``.pt`` file (and nothing that
    identifies another format, which :func:`dictlab.models.formats.detect_format` checks first)."""
    if path.is_file():
        return path.suffix == SUFFIX
    return len([p for p in path.glob(f"*{SUFFIX}") if p.is_file()]) == 1


def load(path: Path) -> ForeignDictionary:
    """Rebuild an OpenAI ReLU autoencoder as a dictlab ``sae`` with activation ``relu``: ``W_enc =
    encoder.weight.T``, ``b_enc = latent_bias``, ``W_dec = decoder.weight.T``, ``b_dec = pre_bias`` (subtracted
    before encoding, as ``apply_b_dec_to_input``). Weights are kept as saved (no decoder renormalisation).

    TopK autoencoders are refused: ``Autoencoder.from_state_dict`` turns on ``normalize`` for every ``"TopK"``
    activation, i.e. each input is layer-normalised by its own mean and standard deviation before encoding and the
    reconstruction is scaled back, a per-sample transform that dictlab's affine encoder cannot hold, so the
    dictionary would be wrong on raw activations. Other activations (e.g. ``Identity``) are refused too.
    """
    weights = weights_file(path)
    state = load_torch_state(weights)
    activation = state.get("activation", "ReLU")
    if activation == "TopK":
        raise ForeignFormatError(
            f"{weights}: unsupported 'activation' 'TopK': OpenAI's Autoencoder.from_state_dict layer-normalises "
            "every input of a TopK autoencoder (normalize=True), which dictlab's affine encoder cannot represent"
        )
    if activation != "ReLU":
        raise ForeignFormatError(f"{weights}: unsupported 'activation' {activation!r}; dictlab reads 'ReLU'")
    if "encoder.weight" not in state or not hasattr(state["encoder.weight"], "shape"):
        raise ForeignFormatError(f"{weights} has no tensor 'encoder.weight' (not an OpenAI sparse_autoencoder file)")
    shape = tuple(state["encoder.weight"].shape)
    if len(shape) != 2:
        raise ForeignFormatError(f"{weights}: tensor 'encoder.weight' must be 2-d [n_latents, d], got {list(shape)}")
    f, d = shape
    tensors = take_tensors(
        {key: value for key, value in state.items() if key not in ("activation", "activation_state_dict")},
        {"pre_bias": (d,), "encoder.weight": (f, d), "latent_bias": (f,), "decoder.weight": (d, f)},
        weights,
        optional=STATS_BUFFERS,
    )
    model = build(
        {"kind": "sae", "d_in": d, "d_out": d, "d_sae": f, "activation": "relu", "apply_b_dec_to_input": True},
        {
            "W_enc": tensors["encoder.weight"].T.contiguous(),
            "b_enc": tensors["latent_bias"],
            "W_dec": tensors["decoder.weight"].T.contiguous(),
            "b_dec": tensors["pre_bias"],
        },
        weights,
    )
    source: dict[str, Any] = {"activation": activation, "file": weights.name}
    if isinstance(state.get("activation_state_dict"), dict):
        source["activation_state_dict"] = plain_json(state["activation_state_dict"])
    return ForeignDictionary(model, {"source_format": "openai", "source_config": source}, (weights.name,))
