"""Splicing hooks and in-model evaluation (CE loss recovered) on a tiny Llama."""

import json
from pathlib import Path

import pytest
import torch

from dictlab.lm.in_model_eval import InModelReport, evaluate_in_model
from dictlab.lm.loading import LanguageModel, load_language_model
from dictlab.lm.positions import kept_positions
from dictlab.lm.splice import mean_ablation, reconstruct_with, spliced, zero_ablation
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary

MODULE = "model.layers.0"
TEXTS = [
    "the cat sat on the mat and looked at the dog",
    "a dog ran to the park",
    "one two three four five six seven eight nine ten",
    "hello world",
    "the quick brown fox jumps over the lazy dog again and again",
    "red green blue",
    "she sells sea shells by the sea shore",
]


@pytest.fixture(scope="module")
def lm(tiny_lm_dir: Path) -> LanguageModel:
    """The tiny Llama, briefly trained on TEXTS so that its clean loss is well below the zero-ablated one."""
    lm = load_language_model(tiny_lm_dir)
    torch.manual_seed(0)
    encoded = lm.tokenizer(TEXTS, padding=True, return_tensors="pt")
    labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
    optimizer = torch.optim.Adam(lm.model.parameters(), lr=1e-2)
    lm.model.train()
    for _ in range(40):
        optimizer.zero_grad()
        out = lm.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"], labels=labels)
        out.loss.backward()
        optimizer.step()
    lm.model.eval()
    return lm


def _sae(d: int, d_sae: int, **fields: object) -> SparseDictionary:
    fields = {"kind": "sae", "d_in": d, "d_out": d, "d_sae": d_sae, **fields}
    return SparseDictionary(DictionaryConfig(**fields), generator=torch.Generator().manual_seed(0))


def _exact_sae(d: int) -> SparseDictionary:
    """ReLU SAE with W_enc = [I, −I], W_dec = [I; −I], no biases: relu(x) − relu(−x) = x."""
    sae = _sae(d, 2 * d, activation="relu", use_bias=False, apply_b_dec_to_input=False)
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
    return sae


def _batch(lm: LanguageModel, texts: list[str]) -> dict[str, torch.Tensor]:
    return lm.tokenizer(texts, padding=True, return_special_tokens_mask=True, return_tensors="pt")


def _module_output(lm: LanguageModel, encoded: dict[str, torch.Tensor]) -> torch.Tensor:
    """Output [batch, seq, d] of MODULE (after any replacement hook registered before)."""
    seen: list[torch.Tensor] = []
    module = lm.model.get_submodule(MODULE)
    handle = module.register_forward_hook(lambda _m, _a, out: seen.append(out[0] if isinstance(out, tuple) else out))
    try:
        with torch.inference_mode():
            lm.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
    finally:
        handle.remove()
    return seen[0]


def test_exact_reconstruction_recovers_everything(lm: LanguageModel) -> None:
    report = evaluate_in_model(lm, "layer:0", _exact_sae(lm.hidden_size), TEXTS, batch_size=3)
    assert report.module == MODULE
    assert report.tokens > report.spliced_positions > 0
    assert abs(report.ce_increase) < 1e-6
    assert abs(report.kl) < 1e-6
    assert report.ce_loss_recovered == pytest.approx(1.0, abs=1e-6)
    assert report.fvu < 1e-10
    assert 0 < report.l0 <= lm.hidden_size
    assert report.ce_zero_ablation > report.ce_clean + 0.5  # the trained model relies on the residual stream
    assert json.loads(json.dumps(report.to_dict()))["module"] == MODULE


def test_random_dictionary_loses_and_zero_dictionary_matches_ablation(lm: LanguageModel) -> None:
    d = lm.hidden_size
    random = evaluate_in_model(lm, MODULE, _sae(d, 4 * d, activation="topk", k=4), TEXTS, batch_size=4)
    assert random.ce_increase > 0
    assert random.kl > 0
    assert random.ce_loss_recovered < 0.9  # ≈ 0.71 here
    assert random.fvu > 0.1
    assert random.l0 == pytest.approx(4.0)

    zero = _sae(d, 4 * d, activation="relu")
    with torch.no_grad():
        zero.W_dec.zero_()
        zero.b_dec.zero_()
    report = evaluate_in_model(lm, MODULE, zero, TEXTS, batch_size=4)
    assert report.ce_spliced == pytest.approx(report.ce_zero_ablation, abs=1e-9)
    assert report.ce_loss_recovered == pytest.approx(0.0, abs=1e-9)
    assert report.ce_clean == pytest.approx(random.ce_clean, abs=1e-9)


def test_scores_average_over_tokens_whatever_the_batching(lm: LanguageModel) -> None:
    sae = _sae(lm.hidden_size, 64, activation="topk", k=8)
    one = evaluate_in_model(lm, MODULE, sae, TEXTS, batch_size=1)
    many = evaluate_in_model(lm, MODULE, sae, TEXTS, batch_size=5)
    assert one.tokens == many.tokens
    assert one.spliced_positions == many.spliced_positions
    for field in ("ce_clean", "ce_spliced", "ce_zero_ablation", "kl", "fvu", "l0"):
        assert getattr(one, field) == pytest.approx(getattr(many, field), rel=1e-4, abs=1e-6), field


def test_hook_changes_only_kept_positions_and_is_removed(lm: LanguageModel) -> None:
    encoded = _batch(lm, TEXTS[:3])
    keep = kept_positions(encoded["attention_mask"], encoded["special_tokens_mask"])
    assert keep.any() and not keep.all()
    clean = _module_output(lm, encoded)
    with spliced(lm.model, MODULE, lambda x: x + 1.0, keep):
        shifted = _module_output(lm, encoded)
    diff = shifted - clean
    assert torch.allclose(diff[keep], torch.ones_like(diff[keep]))
    assert torch.equal(diff[~keep], torch.zeros_like(diff[~keep]))
    module = lm.model.get_submodule(MODULE)
    assert not module._forward_hooks
    assert torch.equal(_module_output(lm, encoded), clean)

    with pytest.raises(RuntimeError, match="boom"), spliced(lm.model, MODULE, zero_ablation, keep):
        raise RuntimeError("boom")
    assert not module._forward_hooks

    with pytest.raises(ValueError, match="keep has shape"), spliced(lm.model, MODULE, zero_ablation, keep[:1]):
        _module_output(lm, encoded)
    assert not module._forward_hooks


def test_replacements() -> None:
    x = torch.randn(5, 8)
    assert torch.equal(zero_ablation(x), torch.zeros(5, 8))
    mean = torch.arange(8.0)
    assert torch.equal(mean_ablation(mean)(x), mean.expand(5, 8))
    sae = _exact_sae(8).double()
    recorded: list[torch.Tensor] = []
    out = reconstruct_with(sae, record=lambda x_in, x_hat, codes: recorded.append(codes))(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, x)
    assert recorded[0].dtype == torch.float64 and recorded[0].shape == (5, 16)


def test_errors(lm: LanguageModel) -> None:
    d = lm.hidden_size
    with pytest.raises(ValueError, match="module width"):
        evaluate_in_model(lm, MODULE, _sae(d // 2, d, activation="relu"), TEXTS)
    transcoder = SparseDictionary(
        DictionaryConfig(kind="transcoder", d_in=d, d_out=d, d_sae=d, activation="relu", apply_b_dec_to_input=False)
    )
    with pytest.raises(ValueError, match="SAE"):
        evaluate_in_model(lm, MODULE, transcoder, TEXTS)
    with pytest.raises(ValueError, match="SAE"):
        reconstruct_with(transcoder)
    encoder = LanguageModel(model=lm.model, tokenizer=lm.tokenizer, name="encoder", is_causal=False)
    with pytest.raises(ValueError, match="causal LM"):
        evaluate_in_model(encoder, MODULE, _exact_sae(d), TEXTS)
    with pytest.raises(ValueError, match="no texts"):
        evaluate_in_model(lm, MODULE, _exact_sae(d), [])
    with pytest.raises(ValueError, match="no position was spliced"):
        evaluate_in_model(lm, MODULE, _exact_sae(d), [""])  # [CLS] [SEP]: scored, but nothing to splice
    with pytest.raises(ValueError, match="matches no module"):
        evaluate_in_model(lm, "model.nothing", _exact_sae(d), TEXTS)
    assert not lm.model.get_submodule(MODULE)._forward_hooks
    assert not lm.model.training


def test_report_to_dict_makes_nan_null() -> None:
    report = InModelReport(MODULE, 3, 2, 1.0, 1.0, 1.0, 0.0, 0.0, float("nan"), 0.0, 1.0)
    assert json.loads(json.dumps(report.to_dict(), allow_nan=False))["ce_loss_recovered"] is None
