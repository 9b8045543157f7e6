"""SAELens v6 folders: round trips per activation, BatchTopK export, topk rescale folding and every failure mode."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dictlab.models import (
    DictionaryConfig,
    SAELensFormatError,
    SparseDictionary,
    activation_names,
    is_saelens_folder,
    load_saelens,
    read_saelens_config,
    save_dictionary,
    save_saelens,
)

D_IN, D_SAE = 12, 48


def _model(activation: str, seed: int = 0, **kwargs: object) -> SparseDictionary:
    gen = torch.Generator().manual_seed(seed)
    k = 5 if activation in activation_names(uses_k=True) else None
    cfg = DictionaryConfig(d_in=D_IN, d_out=D_IN, d_sae=D_SAE, activation=activation, k=k, **kwargs)
    model = SparseDictionary(cfg, generator=gen)
    with torch.no_grad():  # non-trivial biases, non-unit decoder rows
        model.b_enc.copy_(0.1 * torch.randn(D_SAE, generator=gen))
        model.b_dec.copy_(0.1 * torch.randn(D_IN, generator=gen))
        model.W_dec.mul_(1 + torch.rand(D_SAE, 1, generator=gen))
        if activation == "jumprelu":
            model.activation.threshold.copy_((torch.randn(D_SAE, generator=gen) - 2).exp())
    return model


def _inputs(n: int = 64) -> torch.Tensor:
    return torch.randn(n, D_IN, generator=torch.Generator().manual_seed(1))


def _write_folder(folder: Path, cfg: dict, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cfg.json").write_text(json.dumps(cfg))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "sae_weights.safetensors"))
    return folder


@pytest.mark.parametrize(
    ("activation", "architecture"), [("relu", "standard"), ("topk", "topk"), ("jumprelu", "jumprelu")]
)
def test_round_trip(tmp_path: Path, activation: str, architecture: str) -> None:
    model = _model(activation)
    folder = save_saelens(model, tmp_path / "sae", metadata={"model_name": "gpt2", "hook_name": "blocks.8.hook"})
    assert is_saelens_folder(folder)
    raw = read_saelens_config(folder)
    assert raw["architecture"] == architecture
    assert raw["d_in"] == D_IN and raw["d_sae"] == D_SAE and raw["normalize_activations"] == "none"
    assert raw["metadata"] == {"model_name": "gpt2", "hook_name": "blocks.8.hook"}
    if activation == "topk":
        assert raw["k"] == 5 and raw["rescale_acts_by_decoder_norm"] is False
    weights = load_file(str(folder / "sae_weights.safetensors"))
    expected_names = {"W_enc", "W_dec", "b_enc", "b_dec"} | ({"threshold"} if activation == "jumprelu" else set())
    assert set(weights) == expected_names and all(t.dtype == torch.float32 for t in weights.values())

    loaded = load_saelens(folder)
    assert loaded.cfg == model.cfg.model_copy(update={"jumprelu_init_threshold": loaded.cfg.jumprelu_init_threshold})
    for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
        assert torch.equal(getattr(loaded, name), getattr(model, name)), name
    if activation == "jumprelu":
        assert torch.equal(loaded.activation.threshold, model.activation.threshold)
        assert torch.equal(weights["threshold"], model.activation.threshold.detach())
    x = _inputs()
    with torch.no_grad():
        codes = model.encode(x)
        assert torch.equal(loaded.encode(x), codes)
        assert torch.equal(loaded.decode(codes), model.decode(codes))
        assert (codes != 0).any() and (codes == 0).any()


def test_apply_b_dec_to_input_false_round_trips(tmp_path: Path) -> None:
    model = _model("relu", apply_b_dec_to_input=False)
    folder = save_saelens(model, tmp_path / "sae")
    assert read_saelens_config(folder)["apply_b_dec_to_input"] is False
    loaded = load_saelens(folder)
    assert loaded.cfg.apply_b_dec_to_input is False
    x = _inputs()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def _thresholded(activation: str) -> SparseDictionary:
    """A BatchTopK-family model whose inference threshold has been set by a training-mode forward pass."""
    model = _model(activation)
    model.train()
    with torch.no_grad():
        model.encode(_inputs(256))
    return model.eval()


@pytest.mark.parametrize("activation", ["batchtopk", "matryoshka"])
def test_batchtopk_family_exports_as_jumprelu_with_identical_eval_codes(tmp_path: Path, activation: str) -> None:
    model = _thresholded(activation)
    threshold = float(model.activation.threshold)
    assert threshold >= 0
    folder = save_saelens(model, tmp_path / "sae")
    assert read_saelens_config(folder)["architecture"] == "jumprelu"
    assert torch.equal(load_file(str(folder / "sae_weights.safetensors"))["threshold"], torch.full((D_SAE,), threshold))
    loaded = load_saelens(folder)
    assert loaded.cfg.activation == "jumprelu"
    x = torch.randn(500, D_IN, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        codes = model.encode(x)
        assert torch.equal(loaded.encode(x), codes)
        assert torch.equal(loaded(x), model(x))


def test_batchtopk_without_threshold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SAELensFormatError, match="threshold is unset"):
        save_saelens(_model("batchtopk"), tmp_path / "sae")
    assert not (tmp_path / "sae").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "transcoder", "d_out": 7, "activation": "relu", "apply_b_dec_to_input": False}, "transcoder"),
        ({"kind": "crosscoder", "n_sources": 2, "activation": "relu"}, "crosscoder"),
    ],
)
def test_unsupported_exports_are_refused(tmp_path: Path, kwargs: dict, match: str) -> None:
    cfg = DictionaryConfig(**{"d_in": D_IN, "d_out": D_IN, "d_sae": D_SAE, **kwargs})
    with pytest.raises(SAELensFormatError, match=match):
        save_saelens(SparseDictionary(cfg), tmp_path / "sae")


def test_export_does_not_overwrite_a_dictlab_run_folder(tmp_path: Path) -> None:
    model = _model("topk")
    save_dictionary(model, tmp_path / "run")
    with pytest.raises(SAELensFormatError, match="dictlab run folder"):
        save_saelens(model, tmp_path / "run")
    with pytest.raises(SAELensFormatError, match="dictlab run config"):
        load_saelens(tmp_path / "run")


def _saelens_topk_reference(tensors: dict[str, torch.Tensor], k: int, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """SAELens TopKSAE.encode/decode with rescale_acts_by_decoder_norm=True (apply_b_dec_to_input=True)."""
    norms = tensors["W_dec"].norm(dim=-1)
    pre = ((x - tensors["b_dec"]) @ tensors["W_enc"] + tensors["b_enc"]) * norms
    values, indices = pre.topk(k, dim=-1, sorted=False)
    codes = torch.zeros_like(pre).scatter_(-1, indices, values.relu())
    return codes, (codes / norms) @ tensors["W_dec"] + tensors["b_dec"]


def test_topk_rescale_by_decoder_norm_is_folded(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    tensors = {
        "W_enc": torch.randn(D_IN, D_SAE, generator=gen),
        "W_dec": torch.randn(D_SAE, D_IN, generator=gen) * (0.2 + 3 * torch.rand(D_SAE, 1, generator=gen)),
        "b_enc": 0.1 * torch.randn(D_SAE, generator=gen),
        "b_dec": 0.1 * torch.randn(D_IN, generator=gen),
    }
    cfg = {"d_in": D_IN, "d_sae": D_SAE, "architecture": "topk", "k": 6, "rescale_acts_by_decoder_norm": True}
    loaded = load_saelens(_write_folder(tmp_path / "sae", cfg, tensors))
    assert torch.allclose(loaded.W_dec.norm(dim=-1), torch.ones(D_SAE))
    x = _inputs()
    codes, recon = _saelens_topk_reference(tensors, 6, x)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x) != 0, codes != 0)
        assert torch.allclose(loaded.encode(x), codes, atol=1e-5)
        assert torch.allclose(loaded(x), recon, atol=1e-5)

    tensors["W_dec"][3] = 0
    _write_folder(tmp_path / "zero", cfg, tensors)
    with pytest.raises(SAELensFormatError, match="norm 0"):
        load_saelens(tmp_path / "zero")


def _valid_folder(tmp_path: Path) -> Path:
    return save_saelens(_model("jumprelu"), tmp_path / "sae")


def _edit_cfg(folder: Path, **changes: object) -> None:
    cfg = json.loads((folder / "cfg.json").read_text())
    cfg.update(changes)
    (folder / "cfg.json").write_text(json.dumps(cfg))


def _edit_weights(folder: Path, **changes: torch.Tensor) -> None:
    tensors = load_file(str(folder / "sae_weights.safetensors"))
    tensors.update(changes)
    save_file(tensors, str(folder / "sae_weights.safetensors"))


def test_missing_files(tmp_path: Path) -> None:
    folder = _valid_folder(tmp_path)
    (folder / "sae_weights.safetensors").unlink()
    assert not is_saelens_folder(folder)
    with pytest.raises(SAELensFormatError, match=r"sae_weights\.safetensors is missing"):
        load_saelens(folder)
    with pytest.raises(SAELensFormatError, match=r"cfg\.json is missing"):
        load_saelens(tmp_path / "nothing")


def test_invalid_json_and_missing_keys(tmp_path: Path) -> None:
    folder = _valid_folder(tmp_path)
    (folder / "cfg.json").write_text("{not json")
    with pytest.raises(SAELensFormatError, match=r"cfg\.json is not valid JSON"):
        read_saelens_config(folder)
    (folder / "cfg.json").write_text(json.dumps({"d_in": D_IN, "architecture": "standard"}))
    with pytest.raises(SAELensFormatError, match=r"cfg\.json has no 'd_sae' key"):
        load_saelens(folder)
    (folder / "cfg.json").write_text(json.dumps({"d_in": D_IN, "d_sae": D_SAE, "architecture": "topk"}))
    with pytest.raises(SAELensFormatError, match="no 'k' key"):
        load_saelens(folder)
    (folder / "cfg.json").write_text(json.dumps({"d_in": "12", "d_sae": D_SAE, "architecture": "standard"}))
    with pytest.raises(SAELensFormatError, match="'d_in' must be a positive integer"):
        load_saelens(folder)


def test_corrupt_safetensors(tmp_path: Path) -> None:
    folder = _valid_folder(tmp_path)
    path = folder / "sae_weights.safetensors"
    path.write_bytes(b"\x00\x01garbage" + path.read_bytes()[20:])
    with pytest.raises(SAELensFormatError, match=r"sae_weights\.safetensors is corrupt"):
        load_saelens(folder)


def test_wrong_shape(tmp_path: Path) -> None:
    folder = _valid_folder(tmp_path)
    _edit_weights(folder, W_enc=torch.zeros(D_IN, D_SAE + 1))
    with pytest.raises(SAELensFormatError, match=r"sae_weights\.safetensors does not match cfg\.json"):
        load_saelens(folder)
    folder = save_saelens(_model("relu"), tmp_path / "relu")
    _edit_cfg(folder, d_sae=D_SAE * 2)
    with pytest.raises(SAELensFormatError, match="does not match"):
        load_saelens(folder)


def test_missing_threshold_tensor(tmp_path: Path) -> None:
    folder = save_saelens(_model("relu"), tmp_path / "sae")
    _edit_cfg(folder, architecture="jumprelu")
    with pytest.raises(SAELensFormatError, match="threshold"):
        load_saelens(folder)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights(tmp_path: Path, bad: float) -> None:
    folder = _valid_folder(tmp_path)
    b_dec = torch.zeros(D_IN)
    b_dec[2] = bad
    _edit_weights(folder, b_dec=b_dec)
    with pytest.raises(SAELensFormatError, match=r"sae_weights\.safetensors: tensor 'b_dec' contains NaN or Inf"):
        load_saelens(folder)


def test_zero_thresholds_load_as_a_relu_gate(tmp_path: Path) -> None:
    folder = _valid_folder(tmp_path)
    _edit_weights(folder, threshold=torch.zeros(D_SAE))  # SAELens gates on threshold.relu(): a plain ReLU
    model = load_saelens(folder)
    x = torch.randn(16, D_IN, generator=torch.Generator().manual_seed(3))
    shifted = x - model.b_dec if model.cfg.apply_b_dec_to_input else x
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), torch.relu(shifted @ model.W_enc + model.b_enc))


def test_unsupported_architecture(tmp_path: Path) -> None:
    folder = _valid_folder(tmp_path)
    _edit_cfg(folder, architecture="gated")
    with pytest.raises(SAELensFormatError, match=r"cfg\.json: unsupported architecture 'gated'"):
        load_saelens(folder)


@pytest.mark.parametrize("mode", ["expected_average_only_in", "constant_norm_rescale", "layer_norm"])
def test_unsupported_normalize_activations(tmp_path: Path, mode: str) -> None:
    folder = _valid_folder(tmp_path)
    _edit_cfg(folder, normalize_activations=mode)
    with pytest.raises(SAELensFormatError, match=rf"cfg\.json: unsupported normalize_activations '{mode}'"):
        load_saelens(folder)


def test_half_precision_weights_are_widened(tmp_path: Path) -> None:
    folder = _valid_folder(tmp_path)
    _edit_weights(
        folder, **{k: v.to(torch.bfloat16) for k, v in load_file(str(folder / "sae_weights.safetensors")).items()}
    )
    loaded = load_saelens(folder)
    assert loaded.W_enc.dtype == torch.float32


@pytest.mark.skipif(
    importlib.util.find_spec("sae_lens") is None, reason="sae-lens is not installed (the dev extra installs it)"
)
@pytest.mark.parametrize("activation", activation_names())
def test_sae_lens_loads_the_export(tmp_path: Path, activation: str) -> None:
    from sae_lens import SAE

    thresholded = activation_names(uses_k=True, has_inference_threshold=True)  # set by a training-mode pass
    model = _thresholded(activation) if activation in thresholded else _model(activation)
    folder = save_saelens(model, tmp_path / "sae", metadata={"model_name": "gpt2", "hook_name": "blocks.0.hook"})
    sae = SAE.load_from_disk(str(folder), device="cpu")
    x = _inputs()
    with torch.no_grad():
        codes = model.encode(x)
        assert torch.allclose(sae.encode(x), codes, atol=1e-6)
        assert torch.allclose(sae.decode(codes), model.decode(codes), atol=1e-6)
