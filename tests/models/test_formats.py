"""Importers of other libraries' SAEs: dictionary_learning checked against the installed library itself,
sparsify / OpenAI / Gemma Scope against reference forwards written here from their documented maths, then
format detection through ``load_source`` and every refusal (unknown, partial, unsupported, pickled code)."""

import json
import pickle
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor

from dictlab.diagnostics.problem import DiagnosticsInputError
from dictlab.diagnostics.sources import load_source
from dictlab.models import DictionaryConfig, SparseDictionary, save_dictionary, save_saelens
from dictlab.models.formats import ForeignFormatError, detect_format, dictionary_files, load_foreign

D, F, K = 16, 64, 4
ATOL = 1e-5


def _inputs(n: int = 96, seed: int = 1, offset: float = 1.0) -> Tensor:
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed)) + offset


def _close(ours: Tensor, ref: Tensor) -> None:
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=1e-5)


# ---------------------------------------------------------------- dictionary_learning: the real library


DICTIONARY_LEARNING = (
    "needs dictionary_learning: pip install -c constraints.txt dictionary-learning==0.1.0 && pip uninstall -y "
    "torchvision (as .ci/run does)"
)


def _trainer(name: str) -> Any:
    """A dictionary_learning trainer of each supported class, as its users build them."""
    pytest.importorskip("dictionary_learning", reason=DICTIONARY_LEARNING)
    from dictionary_learning.trainers.batch_top_k import BatchTopKTrainer
    from dictionary_learning.trainers.jumprelu import JumpReluTrainer
    from dictionary_learning.trainers.matryoshka_batch_top_k import MatryoshkaBatchTopKTrainer
    from dictionary_learning.trainers.standard import StandardTrainerAprilUpdate
    from dictionary_learning.trainers.top_k import TopKTrainer

    common: dict[str, Any] = {
        "steps": 20,
        "activation_dim": D,
        "dict_size": F,
        "layer": 3,
        "lm_name": "tiny-lm",
        "device": "cpu",
        "seed": 0,
        "warmup_steps": 1,
        "submodule_name": "model.layers.3",
    }
    if name == "AutoEncoder":  # the April-update trainer leaves decoder norms free: exercises the unit-norm fold
        return StandardTrainerAprilUpdate(lr=1e-2, sparsity_warmup_steps=1, **common)
    if name == "AutoEncoderTopK":
        return TopKTrainer(k=K, lr=1e-2, threshold_start_step=0, **common)
    if name == "BatchTopKSAE":
        return BatchTopKTrainer(k=K, lr=1e-2, threshold_start_step=0, **common)
    if name == "MatryoshkaBatchTopKSAE":
        return MatryoshkaBatchTopKTrainer(
            k=K, lr=1e-2, threshold_start_step=0, group_fractions=[0.25, 0.25, 0.5], **common
        )
    assert name == "JumpReluAutoEncoder"
    return JumpReluTrainer(lr=1e-2, sparsity_warmup_steps=1, bandwidth=0.05, **common)


def _save_like_training(folder: Path, config: dict[str, Any], state: dict[str, Tensor]) -> Path:
    """What dictionary_learning/training.py writes: config.json {"trainer": trainer.config} and ae.pt."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"trainer": config}, indent=4))
    torch.save({k: v.cpu() for k, v in state.items()}, folder / "ae.pt")
    return folder


DL_CLASSES = ["AutoEncoder", "AutoEncoderTopK", "BatchTopKSAE", "MatryoshkaBatchTopKSAE", "JumpReluAutoEncoder"]
DL_ACTIVATION = {
    "AutoEncoder": "relu",
    "AutoEncoderNew": "relu",
    "AutoEncoderTopK": "topk",
    "BatchTopKSAE": "batchtopk",
    "MatryoshkaBatchTopKSAE": "matryoshka",
    "JumpReluAutoEncoder": "jumprelu",
}


@pytest.mark.parametrize("dict_class", DL_CLASSES)
def test_dictionary_learning_matches_its_own_loader(tmp_path: Path, dict_class: str) -> None:
    pytest.importorskip("dictionary_learning", reason=DICTIONARY_LEARNING)
    from dictionary_learning.utils import load_dictionary as dl_load

    trainer = _trainer(dict_class)
    x_train = _inputs(128, seed=0)
    for step in range(4):  # a few real optimiser steps: moved weights, estimated thresholds
        trainer.update(step, x_train)
    assert trainer.config["dict_class"] == dict_class
    folder = _save_like_training(tmp_path / "trainer_0", trainer.config, trainer.ae.state_dict())

    peer, _ = dl_load(str(folder), "cpu")
    ours = load_foreign(folder)
    assert ours.model.cfg.activation == DL_ACTIVATION[dict_class]
    assert not ours.model.training
    x = _inputs()
    with torch.no_grad():
        ref_codes = peer.encode(x)
        codes = ours.model.encode(x)
        _close(codes, ref_codes)
        assert 0 < int((ref_codes != 0).sum()) < ref_codes.numel()  # a real, sparse comparison
        _close(ours.model.decode(ref_codes), peer.decode(ref_codes))
    assert ours.metadata["model"] == "tiny-lm" and "module" not in ours.metadata
    assert ours.metadata["source_config"]["trainer"]["submodule_name"] == "model.layers.3"
    assert ours.files == ("config.json", "ae.pt")
    if dict_class == "AutoEncoder":  # from_pretrained normalised the decoder, and so did we
        norms = ours.model.W_dec.norm(dim=1)
        _close(norms, torch.ones_like(norms))
        assert ours.notes
    if dict_class == "MatryoshkaBatchTopKSAE":
        assert ours.model.cfg.matryoshka_prefix_sizes == [16, 32, 64]


def test_dictionary_learning_autoencoder_new_and_resume_checkpoint(tmp_path: Path) -> None:
    """AutoEncoderNew (no pre-encoder bias, its decoder has its own bias) from a backup_steps checkpoint
    {"ae": state_dict, "optimizer": ..., "step": ...}, compared with the peer's own module."""
    pytest.importorskip("dictionary_learning", reason=DICTIONARY_LEARNING)
    from dictionary_learning.dictionary import AutoEncoderNew

    torch.manual_seed(0)
    ae = AutoEncoderNew(D, F)
    with torch.no_grad():
        ae.encoder.bias.normal_(0, 0.1)
        ae.decoder.bias.normal_(0, 0.5)
    folder = tmp_path / "new"
    folder.mkdir()
    config = {"dict_class": "AutoEncoderNew", "trainer_class": "StandardTrainer", "activation_dim": D, "dict_size": F}
    (folder / "config.json").write_text(json.dumps({"trainer": config}))
    optimizer = torch.optim.Adam(ae.parameters())
    torch.save(
        {"step": 7, "ae": ae.state_dict(), "optimizer": optimizer.state_dict(), "config": config}, folder / "ae.pt"
    )
    ours = load_foreign(folder)
    assert not ours.model.cfg.apply_b_dec_to_input
    x = _inputs()
    with torch.no_grad():
        _close(ours.model.encode(x), ae.encode(x))
        codes = ae.encode(x)
        _close(ours.model.decode(codes), ae.decode(codes))


# ---------------------------------------------------------------- sparsify: documented layout, reference forward


def _sparsify_folder(
    folder: Path, *, dtype: torch.dtype = torch.float32, seed: int = 0, **cfg_changes: Any
) -> dict[str, Tensor]:
    """``SparseCoder.save_to_disk``: cfg.json = SparseCoderConfig.to_dict() | {"d_in"}, sae.safetensors =
    save_model(encoder.weight [F, D], encoder.bias [F], W_dec [F, D], b_dec [D])."""
    g = torch.Generator().manual_seed(seed)
    tensors = {
        "encoder.weight": torch.randn(F, D, generator=g) / D**0.5,
        "encoder.bias": 0.1 * torch.randn(F, generator=g),
        "W_dec": torch.randn(F, D, generator=g) / D**0.5,
        "b_dec": 0.5 * torch.randn(D, generator=g),
    }
    tensors = {k: v.to(dtype) for k, v in tensors.items()}
    cfg = {
        "activation": "topk",
        "expansion_factor": 4,
        "normalize_decoder": True,
        "num_latents": 0,
        "k": K,
        "multi_topk": False,
        "skip_connection": False,
        "transcode": False,
    } | cfg_changes
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps({**cfg, "d_in": D}))
    save_file(tensors, str(folder / "sae.safetensors"))
    return {k: v.float() for k, v in tensors.items()}


def _sparsify_reference(t: dict[str, Tensor], x: Tensor, transcode: bool = False) -> tuple[Tensor, Tensor]:
    """sparsify's fused_encoder then decode: top-k of ReLU(encoder(x − b_dec)), codes·W_dec + b_dec."""
    sae_in = x if transcode else x - t["b_dec"]
    pre = torch.relu(sae_in @ t["encoder.weight"].T + t["encoder.bias"])
    values, indices = pre.topk(K, dim=-1, sorted=False)
    codes = torch.zeros_like(pre).scatter_(-1, indices, values)
    return codes, codes @ t["W_dec"] + t["b_dec"]


@pytest.mark.parametrize("variant", ["sae", "transcoder", "legacy"])
def test_sparsify_matches_reference(tmp_path: Path, variant: str) -> None:
    folder = tmp_path / "layers.6"
    transcode = variant == "transcoder"
    tensors = _sparsify_folder(folder, dtype=torch.bfloat16, transcode=transcode)  # sparsify often saves bf16
    if variant == "legacy":  # the 2024 SaeConfig (package "sae"): no num_latents, activation or transcode keys
        legacy = {"expansion_factor": 4, "normalize_decoder": True, "k": K, "signed": False, "d_in": D}
        (folder / "cfg.json").write_text(json.dumps(legacy))
    (tmp_path / "config.json").write_text(json.dumps({"model": "EleutherAI/pythia-70m", "sae": {}}))
    ours = load_foreign(folder)
    assert detect_format(folder) == "sparsify"
    assert ours.model.cfg.d_sae == 4 * D and ours.model.cfg.k == K
    assert ours.model.cfg.kind == ("transcoder" if transcode else "sae")
    x = _inputs()
    ref_codes, ref_out = _sparsify_reference(tensors, x, transcode)
    with torch.no_grad():
        _close(ours.model.encode(x), ref_codes)
        _close(ours.model.decode(ref_codes), ref_out)
    assert ours.metadata["hookpoint"] == "layers.6" and ours.metadata["model"] == "EleutherAI/pythia-70m"


# ---------------------------------------------------------------- OpenAI: documented state dict, reference forward


def _openai_state(seed: int = 0, activation: str = "ReLU") -> dict[str, Any]:
    """``Autoencoder(F, D).state_dict()``: parameters, the statistics buffers, and the activation's name/state."""
    g = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {
        "pre_bias": 0.5 * torch.randn(D, generator=g),
        "latent_bias": 0.1 * torch.randn(F, generator=g),
        "stats_last_nonzero": torch.zeros(F, dtype=torch.long),
        "latents_activation_frequency": torch.ones(F),
        "latents_mean_square": torch.zeros(F),
        "encoder.weight": torch.randn(F, D, generator=g) / D**0.5,
        "decoder.weight": torch.randn(D, F, generator=g) / D**0.5,
        "activation": activation,
        "activation_state_dict": {} if activation == "ReLU" else {"k": K, "postact_fn": "ReLU"},
    }
    return state


def test_openai_relu_matches_reference(tmp_path: Path) -> None:
    state = _openai_state()
    path = tmp_path / "sae" / "resid_post_mlp_6.pt"
    path.parent.mkdir()
    torch.save(state, path)
    x = _inputs()
    latents = torch.relu((x - state["pre_bias"]) @ state["encoder.weight"].T + state["latent_bias"])
    recons = latents @ state["decoder.weight"].T + state["pre_bias"]
    for given in (path, path.parent):  # the file itself, or its folder
        ours = load_foreign(given)
        assert ours.files == ("resid_post_mlp_6.pt",)
        with torch.no_grad():
            _close(ours.model.encode(x), latents)
            _close(ours.model.decode(latents), recons)


# ---------------------------------------------------------------- Gemma Scope: params.npz / params.safetensors


def _gemma_params(d_out: int = D, seed: int = 0) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    return {
        "W_enc": (torch.randn(D, F, generator=g) / D**0.5).numpy(),
        "W_dec": (torch.randn(F, d_out, generator=g) / D**0.5).numpy(),
        "b_enc": (0.1 * torch.randn(F, generator=g)).numpy(),
        "b_dec": (0.5 * torch.randn(d_out, generator=g)).numpy(),
        "threshold": (0.3 + 0.2 * torch.rand(F, generator=g)).numpy(),
    }


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``numpy.savez`` of named arrays (how Gemma Scope's params.npz is written)."""
    np.savez(path, **cast(dict[str, Any], arrays))


def _jumprelu_reference(p: dict[str, np.ndarray], x: Tensor) -> tuple[Tensor, Tensor]:
    """Gemma Scope (SAELens's JumpReLU encode): f = ReLU(pre)·1[pre > θ], pre = x·W_enc + b_enc; x̂ = f·W_dec + b_dec."""
    t = {k: torch.from_numpy(v) for k, v in p.items()}
    pre = x @ t["W_enc"] + t["b_enc"]
    codes = torch.relu(pre) * (pre > t["threshold"])
    return codes, codes @ t["W_dec"] + t["b_dec"]


@pytest.mark.parametrize("variant", ["npz", "safetensors", "transcoder"])
def test_gemma_scope_matches_reference(tmp_path: Path, variant: str) -> None:
    params = _gemma_params(d_out=D + 8 if variant == "transcoder" else D)
    if variant == "npz":  # a few thresholds <= 0: plain ReLU for those latents, in SAELens and in dictlab
        params["threshold"][:5] = [-0.5, -1e-3, 0.0, -2.0, -0.1]
    folder = tmp_path / "layer_12" / "width_16k" / "average_l0_82"
    folder.mkdir(parents=True)
    if variant == "safetensors":  # Gemma Scope 2 spells the weights w_enc / w_dec
        renamed = {("w_" + k[2:] if k.startswith("W_") else k): torch.from_numpy(v) for k, v in params.items()}
        save_file(renamed, str(folder / "params.safetensors"))
    else:
        _savez(folder / "params.npz", params)
    ours = load_foreign(folder)
    assert ours.model.cfg.kind == ("transcoder" if variant == "transcoder" else "sae")
    assert not ours.model.cfg.apply_b_dec_to_input
    threshold = ours.model.activation.inference_threshold()
    assert threshold is not None
    torch.testing.assert_close(threshold, torch.from_numpy(params["threshold"]).clamp(min=0), atol=0, rtol=0)
    x = _inputs()
    ref_codes, ref_out = _jumprelu_reference(params, x)
    with torch.no_grad():
        _close(ours.model.encode(x), ref_codes)
        assert int((ref_codes != 0).sum()) > 0
        _close(ours.model.decode(ref_codes), ref_out)


# ---------------------------------------------------------------- load_source: format and files of each


def test_load_source_names_format_and_files(tmp_path: Path) -> None:
    _sparsify_folder(tmp_path / "sparsify")
    _save_like_training(
        tmp_path / "dl",
        {"dict_class": "JumpReluAutoEncoder", "activation_dim": D, "dict_size": F},
        {k: torch.from_numpy(v) for k, v in _gemma_params().items()},
    )
    (tmp_path / "openai").mkdir()
    torch.save(_openai_state(), tmp_path / "openai" / "ae_6.pt")
    (tmp_path / "gemma").mkdir()
    _savez(tmp_path / "gemma" / "params.npz", _gemma_params())
    model = SparseDictionary(DictionaryConfig(d_in=D, d_out=D, d_sae=F, activation="relu"))
    save_dictionary(model, tmp_path / "dictlab")
    save_saelens(model, tmp_path / "saelens")
    expected = {
        "sparsify": ("sparsify", ("cfg.json", "sae.safetensors")),
        "dl": ("dictionary_learning", ("config.json", "ae.pt")),
        "openai": ("openai", ("ae_6.pt",)),
        "gemma": ("gemma_scope", ("params.npz",)),
        "dictlab": ("dictlab", ("cfg.json", "weights.safetensors")),
        "saelens": ("saelens", ("cfg.json", "sae_weights.safetensors")),
    }
    for name, (fmt, files) in expected.items():
        source = load_source(tmp_path / name)
        assert (source.format, source.files, source.path) == (fmt, files, tmp_path / name), name
        assert dictionary_files(tmp_path / name) == (tmp_path / name, files)
        assert all((source.path / f).is_file() for f in source.files)
        if fmt not in ("dictlab", "saelens"):
            assert source.training_coefficient is None and source.metadata["source_format"] == fmt
    one_file = load_source(tmp_path / "openai" / "ae_6.pt")
    assert (one_file.format, one_file.path, one_file.files) == ("openai", tmp_path / "openai", ("ae_6.pt",))
    assert dictionary_files(tmp_path / "openai" / "ae_6.pt") == (tmp_path / "openai", ("ae_6.pt",))


# ---------------------------------------------------------------- refusals


def test_unknown_folder_and_file(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DiagnosticsInputError, match=r"no dictionary dictlab can read.*sae.safetensors"):
        load_source(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ForeignFormatError, match=r"notes.txt holds no dictionary"):
        detect_format(tmp_path / "notes.txt")
    (tmp_path / "two").mkdir()
    torch.save(_openai_state(), tmp_path / "two" / "a.pt")
    torch.save(_openai_state(), tmp_path / "two" / "b.pt")
    with pytest.raises(ForeignFormatError, match=r"holds no dictionary"):
        load_foreign(tmp_path / "two")
    with pytest.raises(ForeignFormatError, match=r"exactly one .pt file.*'a.pt', 'b.pt'"):
        load_foreign(tmp_path / "two", "openai")


def _edit_safetensors(path: Path, change: dict[str, Tensor | None]) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    for key, value in change.items():
        if value is None:
            del tensors[key]
        else:
            tensors[key] = value
    save_file(tensors, str(path))


def test_partial_and_inconsistent_files(tmp_path: Path) -> None:
    # sparsify cfg.json without its weights
    _sparsify_folder(tmp_path / "s1")
    (tmp_path / "s1" / "sae.safetensors").unlink()
    assert detect_format(tmp_path / "s1") == "sparsify"
    with pytest.raises(ForeignFormatError, match=r"s1/sae.safetensors is missing"):
        load_source(tmp_path / "s1")
    # sparsify: missing tensor, wrong shape, missing config key
    _sparsify_folder(tmp_path / "s2")
    _edit_safetensors(tmp_path / "s2" / "sae.safetensors", {"b_dec": None})
    with pytest.raises(ForeignFormatError, match=r"sae.safetensors has no tensor 'b_dec'"):
        load_foreign(tmp_path / "s2")
    _sparsify_folder(tmp_path / "s3")
    _edit_safetensors(tmp_path / "s3" / "sae.safetensors", {"W_dec": torch.zeros(F, D + 1)})
    with pytest.raises(ForeignFormatError, match=r"tensor 'W_dec' has shape \[64, 17\], expected \[64, 16\]"):
        load_foreign(tmp_path / "s3")
    _sparsify_folder(tmp_path / "s4", num_latents=F + 1)
    with pytest.raises(ForeignFormatError, match=r"'encoder.weight' has shape \[64, 16\], expected \[65, 16\]"):
        load_foreign(tmp_path / "s4")
    # dictionary_learning: config without ae.pt, missing key, k disagreeing with the config
    jr = {"dict_class": "JumpReluAutoEncoder", "activation_dim": D, "dict_size": F}
    params = {k: torch.from_numpy(v) for k, v in _gemma_params().items()}
    folder = _save_like_training(tmp_path / "d1", jr, params)
    (folder / "ae.pt").unlink()
    with pytest.raises(ForeignFormatError, match=r"d1/ae.pt is missing"):
        load_source(folder)
    _save_like_training(tmp_path / "d2", jr, {k: v for k, v in params.items() if k != "threshold"})
    with pytest.raises(ForeignFormatError, match=r"ae.pt has no tensor 'threshold'"):
        load_foreign(tmp_path / "d2")
    _save_like_training(tmp_path / "d3", jr | {"dict_size": F * 2}, params)
    with pytest.raises(ForeignFormatError, match=r"ae.pt: tensor 'W_enc' has shape \[16, 64\], expected \[16, 128\]"):
        load_foreign(tmp_path / "d3")
    topk = {"dict_class": "AutoEncoderTopK", "activation_dim": D, "dict_size": F, "k": K + 1}
    topk_state = {
        "encoder.weight": torch.randn(F, D),
        "encoder.bias": torch.zeros(F),
        "decoder.weight": torch.randn(D, F),
        "b_dec": torch.zeros(D),
        "k": torch.tensor(K, dtype=torch.int),
        "threshold": torch.tensor(-1.0),
    }
    _save_like_training(tmp_path / "d4", topk, topk_state)
    with pytest.raises(ForeignFormatError, match=r"trainer.k = 5 but .*ae.pt has k = 4"):
        load_foreign(tmp_path / "d4")
    _save_like_training(tmp_path / "d5", {"dict_class": "AutoEncoderTopK", "dict_size": F}, topk_state)
    with pytest.raises(ForeignFormatError, match=r"config.json has no 'activation_dim' key"):
        load_foreign(tmp_path / "d5")
    # OpenAI: missing tensor; Gemma Scope: missing key, wrong shape
    (tmp_path / "o1").mkdir()
    torch.save({k: v for k, v in _openai_state().items() if k != "latent_bias"}, tmp_path / "o1" / "sae.pt")
    with pytest.raises(ForeignFormatError, match=r"sae.pt has no tensor 'latent_bias'"):
        load_foreign(tmp_path / "o1")
    (tmp_path / "g1").mkdir()
    _savez(tmp_path / "g1" / "params.npz", {k: v for k, v in _gemma_params().items() if k != "threshold"})
    with pytest.raises(ForeignFormatError, match=r"params.npz has no tensor 'threshold'"):
        load_foreign(tmp_path / "g1")
    (tmp_path / "g2").mkdir()
    _savez(tmp_path / "g2" / "params.npz", (_gemma_params() | {"b_enc": np.zeros(F + 1, np.float32)}))
    with pytest.raises(ForeignFormatError, match=r"params.npz: tensor 'b_enc' has shape \[65\], expected \[64\]"):
        load_foreign(tmp_path / "g2")


def test_unsupported_options(tmp_path: Path) -> None:
    _sparsify_folder(tmp_path / "s0", skip_connection=True)
    with pytest.raises(ForeignFormatError, match=r"s0/cfg.json: unsupported option 'skip_connection'"):
        load_foreign(tmp_path / "s0")
    _sparsify_folder(tmp_path / "s1", activation="groupmax")
    with pytest.raises(ForeignFormatError, match=r"s1/cfg.json: unsupported activation 'groupmax'"):
        load_foreign(tmp_path / "s1")
    _sparsify_folder(tmp_path / "skip")
    _edit_safetensors(tmp_path / "skip" / "sae.safetensors", {"W_skip": torch.zeros(D, D)})
    with pytest.raises(ForeignFormatError, match=r"'W_skip'"):
        load_foreign(tmp_path / "skip")
    gated = {"dict_class": "GatedAutoEncoder", "activation_dim": D, "dict_size": F}
    _save_like_training(tmp_path / "gated", gated, {"decoder_bias": torch.zeros(D)})
    with pytest.raises(ForeignFormatError, match=r"unsupported trainer.dict_class 'GatedAutoEncoder'"):
        load_foreign(tmp_path / "gated")
    batch = {"dict_class": "BatchTopKSAE", "activation_dim": D, "dict_size": F, "k": K}
    unset = {
        "encoder.weight": torch.randn(F, D),
        "encoder.bias": torch.zeros(F),
        "decoder.weight": torch.randn(D, F),
        "b_dec": torch.zeros(D),
        "k": torch.tensor(K, dtype=torch.int),
        "threshold": torch.tensor(-1.0),
    }
    _save_like_training(tmp_path / "unset", batch, unset)
    with pytest.raises(ForeignFormatError, match=r"'threshold' is -1.0 \(unset\)"):
        load_foreign(tmp_path / "unset")
    (tmp_path / "topk").mkdir()
    torch.save(_openai_state(activation="TopK"), tmp_path / "topk" / "v5.pt")
    with pytest.raises(ForeignFormatError, match=r"unsupported 'activation' 'TopK'.*layer-normalises"):
        load_source(tmp_path / "topk")
    (tmp_path / "skipgemma").mkdir()
    skip = {k: torch.from_numpy(v) for k, v in _gemma_params().items()} | {"affine_skip_connection": torch.eye(D)}
    save_file(skip, str(tmp_path / "skipgemma" / "params.safetensors"))
    with pytest.raises(ForeignFormatError, match=r"'affine_skip_connection'"):
        load_foreign(tmp_path / "skipgemma")


class _Payload:
    """Unpickling this would run code (create a marker file); weights_only loading must refuse it first."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_pickled_code_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    folder = tmp_path / "evil"
    folder.mkdir()
    with (folder / "ae.pt").open("wb") as fh:
        pickle.dump({"encoder.weight": _Payload(marker)}, fh, protocol=2)
    (folder / "config.json").write_text(
        json.dumps({"trainer": {"dict_class": "AutoEncoder", "activation_dim": D, "dict_size": F}})
    )
    with pytest.raises(ForeignFormatError, match=r"does not unpickle"):
        load_foreign(folder)
    torch.save({"encoder.weight": _Payload(marker)}, folder / "ae.pt")  # the torch zip format, same refusal
    with pytest.raises(ForeignFormatError, match=r"does not unpickle"):
        load_foreign(folder)
    assert not marker.exists()
    (tmp_path / "g").mkdir()
    _savez(tmp_path / "g" / "params.npz", (_gemma_params() | {"W_enc": np.array([{"a": 1}], dtype=object)}))
    with pytest.raises(ForeignFormatError, match=r"params.npz is corrupt or not a numpy .npz file"):
        load_foreign(tmp_path / "g")
