"""The dictionary module: orientation, kinds, validation, run-folder round trip and its failure modes."""

import json

import pytest
import torch
from pydantic import ValidationError

from dictlab.models import (
    DictionaryConfig,
    RunFolderError,
    SparseDictionary,
    activation_names,
    load_dictionary,
    save_dictionary,
)


def test_saelens_orientation_and_reconstruction() -> None:
    model = SparseDictionary(DictionaryConfig(d_in=10, d_out=10, d_sae=40, activation="topk", k=4))
    assert model.W_enc.shape == (10, 40) and model.W_dec.shape == (40, 10)
    assert model.b_enc.shape == (40,) and model.b_dec.shape == (10,)
    assert torch.allclose(model.W_dec.norm(dim=-1), torch.ones(40))
    x = torch.randn(3, 10)
    codes = model.encode(x)
    expected = torch.relu((x - model.b_dec) @ model.W_enc + model.b_enc)
    assert torch.allclose(codes[codes != 0], expected[codes != 0])
    assert torch.allclose(model(x), codes @ model.W_dec + model.b_dec)


@pytest.mark.parametrize("sizes", [[5, 12, 40], [8, 30]])  # the second leaves latents 30–39 out
def test_prefix_decodes_equal_one_decode_per_prefix(sizes: list[int]) -> None:
    model = SparseDictionary(DictionaryConfig(d_in=6, d_out=6, d_sae=40, activation="relu")).double()
    with torch.no_grad():
        model.b_dec.normal_()
    codes = torch.randn(9, 40, dtype=torch.float64).relu().requires_grad_()
    together = model.decode_prefixes(codes, sizes)
    for got, m in zip(together, sizes, strict=True):
        torch.testing.assert_close(got, model.decode(codes, m), rtol=0, atol=1e-12)
    weights = torch.randn(len(sizes), 9, 6, dtype=torch.float64)
    grads = {}
    for name, outputs in (("together", together), ("apart", [model.decode(codes, m) for m in sizes])):
        loss = sum((w * out).sum() for w, out in zip(weights, outputs, strict=True))
        grads[name] = torch.autograd.grad(loss, [codes, model.W_dec, model.b_dec])
    for got, expected in zip(grads["together"], grads["apart"], strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_transcoder_maps_between_widths_without_pre_encoder_bias() -> None:
    cfg = DictionaryConfig(kind="transcoder", d_in=6, d_out=9, d_sae=20, activation="relu", apply_b_dec_to_input=False)
    model = SparseDictionary(cfg)
    assert model(torch.randn(4, 6)).shape == (4, 9)
    with pytest.raises(ValidationError, match="transcoder"):
        DictionaryConfig(kind="transcoder", d_in=6, d_out=9, d_sae=20)


def test_crosscoder_decoder_blocks_and_norms() -> None:
    cfg = DictionaryConfig(kind="crosscoder", d_in=12, d_out=12, d_sae=8, n_sources=3, activation="relu")
    model = SparseDictionary(cfg)
    blocks = model.decoder_blocks()
    assert blocks.shape == (8, 3, 4)
    assert torch.allclose(model.decoder_norms(), blocks.norm(dim=-1).sum(dim=-1))
    with pytest.raises(ValidationError, match="divisible"):
        DictionaryConfig(kind="crosscoder", d_in=10, d_out=10, d_sae=8, n_sources=3)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"activation": "topk", "k": 50}, "k \\(50\\) must not exceed d_sae"),
        ({"activation": "topk"}, "needs k"),
        ({"activation": "gelu"}, "activation"),
        ({"d_out": 5}, "must equal d_out"),
        ({"activation": "matryoshka", "k": 2, "matryoshka_prefixes": (0.5, 0.25, 1.0)}, "non-increasing"),
    ],
)
def test_bad_configs_are_rejected(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DictionaryConfig(**{"d_in": 4, "d_out": 4, "d_sae": 16, **fields})


def test_wrong_input_width_is_a_clear_error() -> None:
    model = SparseDictionary(DictionaryConfig(d_in=4, d_out=4, d_sae=8, activation="relu"))
    with pytest.raises(ValueError, match=r"x_in must have shape \[batch, 4\]"):
        model.encode(torch.randn(2, 5))


def _trained_copy(cfg: DictionaryConfig) -> SparseDictionary:
    model = SparseDictionary(cfg, torch.Generator().manual_seed(3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(32, cfg.d_in)
    for _ in range(3):
        out = model.loss(x, torch.randn(32, cfg.d_out) if cfg.kind == "transcoder" else x)
        loss = out.reconstruction + (out.sparsity if out.sparsity is not None else 0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


@pytest.mark.parametrize(
    "cfg",
    [DictionaryConfig(d_in=6, d_out=6, d_sae=24, activation=a, k=3) for a in activation_names()]
    + [
        DictionaryConfig(
            kind="transcoder", d_in=6, d_out=5, d_sae=24, activation="topk", k=3, apply_b_dec_to_input=False
        ),
        DictionaryConfig(kind="crosscoder", d_in=8, d_out=8, d_sae=24, n_sources=2, activation="relu"),
        DictionaryConfig(d_in=6, d_out=6, d_sae=24, activation="relu", use_bias=False),
    ],
    ids=lambda c: f"{c.kind}-{c.activation}-bias{int(c.use_bias)}",
)
def test_save_load_is_bit_exact(cfg: DictionaryConfig, tmp_path) -> None:
    model = _trained_copy(cfg)
    save_dictionary(model, tmp_path / "run", metadata={"note": "test"})
    loaded = load_dictionary(tmp_path / "run")
    assert loaded.cfg == model.cfg
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    model.eval()
    loaded.eval()
    x = torch.randn(7, cfg.d_in)
    assert torch.equal(model(x), loaded(x))
    saved = json.loads((tmp_path / "run" / "cfg.json").read_text())
    assert saved["dictlab_version"] and saved["dictionary"]["activation"] == cfg.activation
    assert saved["metadata"] == {"note": "test"}


def test_run_folder_failures_are_named(tmp_path) -> None:
    model = SparseDictionary(DictionaryConfig(d_in=4, d_out=4, d_sae=8, activation="relu"))
    folder = save_dictionary(model, tmp_path / "run")
    weights = folder / "weights.safetensors"
    good = weights.read_bytes()

    weights.write_bytes(good[: len(good) // 2])
    with pytest.raises(RunFolderError, match=r"weights\.safetensors is corrupt"):
        load_dictionary(folder)
    weights.unlink()
    with pytest.raises(RunFolderError, match=r"weights\.safetensors is missing"):
        load_dictionary(folder)
    weights.write_bytes(good)

    cfg_text = (folder / "cfg.json").read_text()
    (folder / "cfg.json").write_text(cfg_text[:20])
    with pytest.raises(RunFolderError, match=r"cfg\.json is not valid JSON"):
        load_dictionary(folder)
    wrong = json.loads(cfg_text)
    wrong["dictionary"]["d_sae"] = 9
    (folder / "cfg.json").write_text(json.dumps(wrong))
    with pytest.raises(RunFolderError, match="does not match"):
        load_dictionary(folder)
    (folder / "cfg.json").unlink()
    with pytest.raises(RunFolderError, match=r"cfg\.json is missing"):
        load_dictionary(folder)
