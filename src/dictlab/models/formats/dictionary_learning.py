"""saprmarks/dictionary_learning trainer folders: ``ae.pt`` (the dictionary's state dict) + ``config.json``.

``config.json`` is what ``dictionary_learning/training.py`` writes: ``{"trainer": trainer.config, "buffer": ...}``
with ``dict_class``, ``trainer_class``, ``activation_dim``, ``dict_size`` and, for the TopK family, ``k``. ``ae.pt``
is ``torch.save({name: tensor})`` of the dictionary, saved with any ``norm_factor`` already folded into its biases
(training.py calls ``scale_biases(norm_factor)`` before saving), so it acts on raw activations. A resume
checkpoint (``{"ae": state_dict, "optimizer": ..., "step": ...}``, written by ``backup_steps``) is read too.

Class definitions: ``dictionary_learning/dictionary.py`` and ``dictionary_learning/trainers/{top_k,batch_top_k,
matryoshka_batch_top_k}.py`` (dictionary_learning 0.1.0 and main of 2025-08). The mapping follows
``dictionary_learning/utils.py`` ``load_dictionary`` (each class's ``from_pretrained`` with its default arguments).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dictlab.models.formats.common import (
    ForeignDictionary,
    ForeignFormatError,
    build,
    jumprelu_threshold,
    load_torch_state,
    plain_json,
    positive_int,
    read_config,
    scalar_int,
    take_tensors,
    text_or_none,
    unit_decoder,
)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "ae.pt"

Converted = tuple[dict[str, Any], dict[str, Tensor], tuple[str, ...]]
"""(DictionaryConfig fields, dictlab state dict, mapping notes)."""


def detect(folder: Path) -> bool:
    """Whether ``folder`` holds ``ae.pt`` or a ``config.json`` with a ``trainer`` section."""
    if (folder / WEIGHTS_FILE).is_file():
        return True
    if not (folder / CONFIG_FILE).is_file():
        return False
    try:
        return isinstance(read_config(folder / CONFIG_FILE, "").get("trainer"), dict)
    except ForeignFormatError:
        return False


def _k(state: dict[str, Any], trainer: dict[str, Any], weights: Path, cfg_path: Path) -> int:
    """k from the saved ``k`` buffer, which must agree with ``trainer.k`` when the config records it (as
    ``from_pretrained(k=...)`` checks)."""
    k = scalar_int(state, "k", weights)
    if "k" in trainer and positive_int(trainer, "k", cfg_path) != k:
        raise ForeignFormatError(f"{cfg_path}: trainer.k = {trainer['k']} but {weights} has k = {k}")
    return k


def _threshold(state: dict[str, Any], weights: Path) -> Tensor:
    """The scalar BatchTopK threshold buffer, which training must have set (≥ 0)."""
    if "threshold" not in state:
        raise ForeignFormatError(f"{weights} has no tensor 'threshold' (the inference threshold of BatchTopK)")
    value = take_tensors({"threshold": state["threshold"]}, {"threshold": ()}, weights)["threshold"]
    if value < 0:
        raise ForeignFormatError(
            f"{weights}: 'threshold' is {float(value)} (unset): the dictionary was saved before its inference "
            "threshold was estimated (threshold_start_step), so its inference codes are undefined"
        )
    return value


def _autoencoder(state: dict[str, Any], d: int, f: int, weights: Path, trainer: dict[str, Any], cfg: Path) -> Converted:
    t = take_tensors(
        state, {"bias": (d,), "encoder.weight": (f, d), "encoder.bias": (f,), "decoder.weight": (d, f)}, weights
    )
    W_enc, b_enc, W_dec = t["encoder.weight"].T, t["encoder.bias"], t["decoder.weight"].T
    notes: tuple[str, ...] = ()
    norms = W_dec.norm(dim=1)
    if not torch.allclose(norms, torch.ones_like(norms)):
        W_enc, b_enc, W_dec = unit_decoder(W_enc, b_enc, W_dec, weights)
        notes = ("decoder rows rescaled to unit norm, codes multiplied by the norms (as from_pretrained does)",)
    fields = {"activation": "relu", "apply_b_dec_to_input": True}
    return fields, {"W_enc": W_enc, "b_enc": b_enc, "W_dec": W_dec, "b_dec": t["bias"]}, notes


def _autoencoder_new(
    state: dict[str, Any], d: int, f: int, weights: Path, trainer: dict[str, Any], cfg: Path
) -> Converted:
    t = take_tensors(
        state,
        {"encoder.weight": (f, d), "encoder.bias": (f,), "decoder.weight": (d, f), "decoder.bias": (d,)},
        weights,
    )
    state_out = {
        "W_enc": t["encoder.weight"].T,
        "b_enc": t["encoder.bias"],
        "W_dec": t["decoder.weight"].T,
        "b_dec": t["decoder.bias"],
    }
    return {"activation": "relu", "apply_b_dec_to_input": False}, state_out, ()


def _linear_topk(state: dict[str, Any], d: int, f: int, weights: Path) -> dict[str, Tensor]:
    t = take_tensors(
        state,
        {"encoder.weight": (f, d), "encoder.bias": (f,), "decoder.weight": (d, f), "b_dec": (d,)},
        weights,
        optional=("k", "threshold"),
    )
    return {
        "W_enc": t["encoder.weight"].T,
        "b_enc": t["encoder.bias"],
        "W_dec": t["decoder.weight"].T,
        "b_dec": t["b_dec"],
    }


def _topk(state: dict[str, Any], d: int, f: int, weights: Path, trainer: dict[str, Any], cfg: Path) -> Converted:
    k = _k(state, trainer, weights, cfg)
    if "threshold" not in state:
        raise ForeignFormatError(f"{weights} has no tensor 'threshold' (AutoEncoderTopK saves one)")
    notes = ("per-sample top-k codes (encode's default use_threshold=False); the saved threshold is not used",)
    return {"activation": "topk", "k": k, "apply_b_dec_to_input": True}, _linear_topk(state, d, f, weights), notes


def _batch_topk(state: dict[str, Any], d: int, f: int, weights: Path, trainer: dict[str, Any], cfg: Path) -> Converted:
    k = _k(state, trainer, weights, cfg)
    threshold = _threshold(state, weights)
    out = _linear_topk(state, d, f, weights) | {"activation.threshold": threshold}
    return {"activation": "batchtopk", "k": k, "apply_b_dec_to_input": True}, out, ()


def _matryoshka(state: dict[str, Any], d: int, f: int, weights: Path, trainer: dict[str, Any], cfg: Path) -> Converted:
    k = _k(state, trainer, weights, cfg)
    threshold = _threshold(state, weights)
    sizes = state.get("group_sizes")
    if not isinstance(sizes, Tensor) or sizes.dim() != 1 or sizes.is_floating_point() or sizes.numel() == 0:
        raise ForeignFormatError(f"{weights}: 'group_sizes' must be a 1-d integer tensor, got {sizes!r}")
    groups = [int(s) for s in sizes.tolist()]
    if min(groups) <= 0 or sum(groups) != f:
        raise ForeignFormatError(f"{weights}: 'group_sizes' {groups} must be positive and sum to dict_size {f}")
    t = take_tensors(
        state,
        {"W_enc": (d, f), "b_enc": (f,), "W_dec": (f, d), "b_dec": (d,)},
        weights,
        optional=("k", "threshold", "group_sizes"),
    )
    prefixes = tuple(float(sum(groups[: i + 1]) / f) for i in range(len(groups)))
    fields = {"activation": "matryoshka", "k": k, "matryoshka_prefixes": prefixes, "apply_b_dec_to_input": True}
    notes = ()
    weights_list = trainer.get("group_weights")
    if isinstance(weights_list, list) and len({str(w) for w in weights_list}) > 1:
        notes = ("group_weights are not equal; dictlab's Matryoshka loss weights every prefix equally",)
    return fields, t | {"activation.threshold": threshold}, notes


def _jumprelu(state: dict[str, Any], d: int, f: int, weights: Path, trainer: dict[str, Any], cfg: Path) -> Converted:
    t = take_tensors(
        state, {"W_enc": (d, f), "b_enc": (f,), "W_dec": (f, d), "b_dec": (d,), "threshold": (f,)}, weights
    )
    out = {name: t[name] for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    out["activation.threshold"] = jumprelu_threshold(t["threshold"])
    return {"activation": "jumprelu", "apply_b_dec_to_input": False}, out, ()


CONVERTERS: dict[str, Callable[[dict[str, Any], int, int, Path, dict[str, Any], Path], Converted]] = {
    "AutoEncoder": _autoencoder,
    "AutoEncoderNew": _autoencoder_new,
    "AutoEncoderTopK": _topk,
    "BatchTopKSAE": _batch_topk,
    "MatryoshkaBatchTopKSAE": _matryoshka,
    "JumpReluAutoEncoder": _jumprelu,
}
"""Supported ``dict_class`` values and their converters."""


def load(folder: Path) -> ForeignDictionary:
    """Rebuild a dictionary_learning dictionary as a dictlab ``sae``; ``dict_class`` selects the mapping:

    - ``AutoEncoder`` (StandardTrainer, PAnneal): ``ReLU(encoder(x − bias))``, ``decoder(f) + bias`` → ``relu``
      with ``b_dec = bias`` subtracted before encoding. Like its ``from_pretrained`` (``normalize_decoder=True``,
      what ``load_dictionary`` uses), decoder columns that are not unit norm (the April-update trainer leaves them
      free) are rescaled to unit norm with the encoder rows and bias scaled up to match: same reconstructions,
      codes times ‖d_i‖.
    - ``AutoEncoderNew``: ``ReLU(encoder(x))``, ``decoder(f)`` with the decoder's own bias → ``relu`` without the
      pre-encoder bias.
    - ``AutoEncoderTopK``: top-k of ``ReLU(encoder(x − b_dec))`` → ``topk`` (same codes). Its ``threshold`` buffer
      is only used by ``encode(use_threshold=True)``, not the default, and is ignored.
    - ``BatchTopKSAE``: inference codes ``ReLU(pre)·1[ReLU(pre) > threshold]`` with the scalar learned threshold
      (``encode``'s default ``use_threshold=True``) → ``batchtopk`` whose eval-mode codes are ``pre·1[pre >
      threshold]`` with the same scalar (equal for threshold ≥ 0). A threshold left at −1 (never estimated) is refused.
    - ``MatryoshkaBatchTopKSAE`` (``W_enc``/``W_dec`` parameters, ``group_sizes`` buffer): as BatchTopKSAE →
      ``matryoshka`` with prefixes the cumulative group sizes over ``dict_size``. Unequal ``group_weights`` only
      changed its training loss (dictlab weights prefixes equally).
    - ``JumpReluAutoEncoder``: ``ReLU(pre·1[pre > θ])`` with ``pre = x·W_enc + b_enc`` (no b_dec subtraction, its
      trainer's default) → ``jumprelu`` with the same θ (θ ≤ 0, plain ReLU in both, is stored as 0).

    ``GatedAutoEncoder`` (and anything else) is refused: dictlab has no gated encoder.
    """
    cfg_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    raw = read_config(cfg_path, "a dictionary_learning folder needs the config.json its trainer wrote")
    trainer = raw.get("trainer")
    if not isinstance(trainer, dict):
        raise ForeignFormatError(f"{cfg_path} has no 'trainer' object")
    dict_class = trainer.get("dict_class")
    if dict_class not in CONVERTERS:
        raise ForeignFormatError(
            f"{cfg_path}: unsupported trainer.dict_class {dict_class!r}; dictlab reads {sorted(CONVERTERS)}"
        )
    d, f = positive_int(trainer, "activation_dim", cfg_path), positive_int(trainer, "dict_size", cfg_path)
    state = load_torch_state(weights_path)
    if isinstance(state.get("ae"), dict) and "optimizer" in state:  # a backup_steps resume checkpoint
        state = state["ae"]
    fields, tensors, notes = CONVERTERS[dict_class](state, d, f, weights_path, trainer, cfg_path)
    tensors = {name: t.contiguous() for name, t in tensors.items()}
    model = build({"kind": "sae", "d_in": d, "d_out": d, "d_sae": f, **fields}, tensors, weights_path)
    metadata: dict[str, Any] = {"source_format": "dictionary_learning", "source_config": plain_json(raw)}
    if (lm_name := text_or_none(trainer.get("lm_name"))) is not None:
        metadata["model"] = lm_name  # submodule_name is a free label, not a module path: no "module" is recorded
    return ForeignDictionary(model, metadata, (CONFIG_FILE, WEIGHTS_FILE), notes)
