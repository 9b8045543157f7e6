"""Core metrics: parity with SAELens' own evaluation functions on a real HookedTransformer, and a run on the tiny
Llama and its store (exact dictionary: CE score 1, KL 0)."""

import math
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from dictlab.data.store import ActivationStore
from dictlab.evals.core import EVAL_TYPE_ID, CoreOptions, CoreResult, evaluate_core, in_model_sums
from dictlab.evals.rows import contiguous_rows
from dictlab.lm.interventions import TokenBatch
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary
from dictlab.models.saelens import load_saelens

D_MODEL, D_VOCAB, CONTEXT, BOS = 16, 50, 16, 0
HOOK = "blocks.0.hook_resid_post"
PROMPTS, BATCHES = 4, 3
RTOL, ATOL = 1e-5, 1e-6
"""float32 on both sides; dictlab sums in float64, SAELens averages float32 tensors."""

SCALARS = {
    "model_behavior_preservation": ("kl_div_score", "kl_div_with_ablation", "kl_div_with_sae"),
    "model_performance_preservation": (
        "ce_loss_score",
        "ce_loss_with_ablation",
        "ce_loss_with_sae",
        "ce_loss_without_sae",
    ),
    "reconstruction_quality": ("explained_variance", "explained_variance_legacy", "mse", "cossim"),
    "shrinkage": ("l2_norm_in", "l2_norm_out", "l2_ratio", "relative_reconstruction_bias"),
    "sparsity": ("l0", "l1"),
}
PER_LATENT = (
    "feature_density",
    "consistent_activation_heuristic",
    "encoder_norm",
    "encoder_decoder_cosine_sim",
    "encoder_bias",
)


class _LogitsOf(nn.Module):
    """A HookedTransformer called the way transformers causal LMs are (``input_ids``, ``.logits``); its hook points
    stay ordinary submodules, so dictlab's splicing hooks them by name (``tl.blocks.0.hook_resid_post``)."""

    def __init__(self, tl: nn.Module) -> None:
        super().__init__()
        self.tl = tl

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None, use_cache: bool = False) -> Any:
        del attention_mask, use_cache  # every test context is full length, as SAELens' are
        return SimpleNamespace(logits=self.tl(input_ids, return_type="logits"))


@pytest.fixture(scope="module")
def tl_model() -> Any:
    transformer_lens = pytest.importorskip("transformer_lens")
    config = transformer_lens.HookedTransformerConfig(
        n_layers=2, d_model=D_MODEL, n_ctx=32, d_head=4, n_heads=4, d_mlp=32, d_vocab=D_VOCAB, act_fn="gelu", seed=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return transformer_lens.HookedTransformer(config).eval()


@pytest.fixture(scope="module")
def tokens() -> Tensor:
    """[PROMPTS * BATCHES, CONTEXT]: BOS first, a few BOS inside (SAELens and dictlab must both skip them)."""
    g = torch.Generator().manual_seed(1)
    toks = torch.randint(1, D_VOCAB, (PROMPTS * BATCHES, CONTEXT), generator=g)
    toks[:, 0] = BOS
    toks[1, 7] = toks[5, 3] = toks[10, 12] = BOS
    return toks


def _saelens_sae(architecture: str) -> Any:
    """A SAELens SAE at HOOK with seeded random weights and nonzero biases (and thresholds)."""
    sae_lens = pytest.importorskip("sae_lens")
    d_sae = 40
    if architecture == "standard":
        sae = sae_lens.StandardSAE(sae_lens.StandardSAEConfig(d_in=D_MODEL, d_sae=d_sae))
    elif architecture == "topk":
        sae = sae_lens.TopKSAE(sae_lens.TopKSAEConfig(d_in=D_MODEL, d_sae=d_sae, k=6))
    else:
        sae = sae_lens.JumpReLUSAE(sae_lens.JumpReLUSAEConfig(d_in=D_MODEL, d_sae=d_sae))
    sae.cfg.metadata.hook_name = HOOK
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        W_dec = torch.randn(d_sae, D_MODEL, generator=g)
        sae.W_dec.copy_(W_dec / W_dec.norm(dim=1, keepdim=True))
        sae.W_enc.copy_(0.5 * sae.W_dec.T + 0.1 * torch.randn(D_MODEL, d_sae, generator=g))
        sae.b_enc.copy_(0.2 * torch.randn(d_sae, generator=g))
        sae.b_dec.copy_(0.3 * torch.randn(D_MODEL, generator=g))
        if architecture == "jumprelu":
            sae.threshold.copy_(0.05 + 0.3 * torch.rand(d_sae, generator=g))
    return sae


def _saelens_metrics(sae: Any, model: Any, tokens: Tensor) -> tuple[dict[str, Any], dict[str, Any]]:
    """SAELens' run_evals on an ActivationsStore over ``tokens`` (pre-tokenized, offline), BOS excluded."""
    import datasets
    from sae_lens.evals import get_eval_everything_config, run_evals
    from sae_lens.training.activation_scaler import ActivationScaler
    from sae_lens.training.activations_store import ActivationsStore

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = ActivationsStore(
            model=model,
            dataset=datasets.Dataset.from_dict({"tokens": tokens.tolist()}),
            streaming=False,
            hook_name=HOOK,
            hook_head_index=None,
            context_size=CONTEXT,
            d_in=D_MODEL,
            n_batches_in_buffer=2,
            total_training_tokens=tokens.numel(),
            store_batch_size_prompts=PROMPTS,
            train_batch_size_tokens=PROMPTS * CONTEXT,
            prepend_bos=False,
            normalize_activations="none",
            device=torch.device("cpu"),
            dtype="float32",
        )
        config = get_eval_everything_config(
            batch_size_prompts=PROMPTS, n_eval_reconstruction_batches=BATCHES, n_eval_sparsity_variance_batches=BATCHES
        )
        return run_evals(sae, store, model, ActivationScaler(), config, exclude_special_tokens=[BOS])


def _rows(model: Any, tokens: Tensor, keep_bos: bool = False) -> tuple[list[Tensor], list[Tensor]]:
    """Per batch of PROMPTS contexts: the activations at HOOK of the non-BOS positions, row-major, [n, D_MODEL],
    and each row's context index [n] — what a store captured from these contexts would hold."""
    acts, ids = [], []
    with torch.no_grad():
        for b in range(BATCHES):
            toks = tokens[b * PROMPTS : (b + 1) * PROMPTS]
            _, cache = model.run_with_cache(toks, names_filter=[HOOK])
            keep = torch.ones_like(toks, dtype=torch.bool) if keep_bos else toks != BOS
            context = torch.arange(b * PROMPTS, (b + 1) * PROMPTS)[:, None].expand_as(toks)
            acts.append(cache[HOOK][keep])
            ids.append(context[keep])
    return acts, ids


def _dictlab_result(dictionary: SparseDictionary, model: Any, tokens: Tensor, **kw: Any) -> CoreResult:
    acts, ids = _rows(model, tokens, **kw)
    result = evaluate_core(dictionary, acts, CoreOptions(batch_size=PROMPTS * CONTEXT), text_index=ids)
    token_batches = [TokenBatch(toks, torch.ones_like(toks), toks != BOS) for toks in tokens.split(PROMPTS)[:BATCHES]]
    sums = in_model_sums(_LogitsOf(model), f"tl.{HOOK}", dictionary, token_batches)
    return result.model_copy(update=sums.metrics())


@pytest.mark.parametrize("architecture", ["standard", "topk", "jumprelu"])
def test_every_metric_equals_saelens(architecture: str, tl_model: Any, tokens: Tensor, tmp_path: Path) -> None:
    sae = _saelens_sae(architecture)
    sae.save_model(tmp_path)
    dictionary = load_saelens(tmp_path)
    expected, expected_latents = _saelens_metrics(sae, tl_model, tokens)

    result = _dictlab_result(dictionary, tl_model, tokens)
    ours = result.saebench_metrics()
    compared = 0
    for category, names in SCALARS.items():
        for name in names:
            assert ours[category][name] == pytest.approx(expected[category][name], rel=RTOL, abs=ATOL), name
            compared += 1
    assert compared == 17
    for name in PER_LATENT:
        np.testing.assert_allclose(getattr(result, name), expected_latents[name], rtol=RTOL, atol=ATOL, err_msg=name)
    assert result.rows == int((tokens[: PROMPTS * BATCHES] != BOS).sum())
    assert ours["token_stats"]["total_tokens_eval_sparsity_variance"] == result.rows

    # the comparison is sharp: SAELens' metrics are not what the same code gives with the BOS rows left in
    with_bos = _dictlab_result(dictionary, tl_model, tokens, keep_bos=True)
    assert with_bos.explained_variance != pytest.approx(result.explained_variance, rel=1e-3)
    assert with_bos.mse != pytest.approx(result.mse, rel=1e-3)


def test_details_and_misc_follow_saebench_layout(tl_model: Any, tokens: Tensor, tmp_path: Path) -> None:
    sae = _saelens_sae("standard")
    sae.save_model(tmp_path)
    dictionary = load_saelens(tmp_path)
    acts, ids = _rows(tl_model, tokens)
    result = evaluate_core(dictionary, acts, CoreOptions(batch_size=64), text_index=ids)
    details = result.saebench_details()
    assert EVAL_TYPE_ID == "core" and len(details) == 40
    assert set(details[3]) == {
        "index",
        "feature_density",
        "consistent_activation_heuristic",
        "encoder_bias",
        "encoder_norm",
        "encoder_decoder_cosine_sim",
        "max_decoder_cosine_sim",
        "max_encoder_cosine_sim",
    }
    # max cosine with any other latent, from the weights directly
    unit = torch.nn.functional.normalize(dictionary.W_dec.detach().double(), dim=1)
    sims = unit @ unit.T
    sims.fill_diagonal_(-math.inf)
    np.testing.assert_allclose(result.max_decoder_cosine_sim or [], sims.max(dim=1).values.numpy(), rtol=RTOL)
    density = np.asarray(result.feature_density)
    misc = result.saebench_metrics()["misc_metrics"]
    assert misc["frac_alive"] == pytest.approx((density > 0).mean())
    assert misc["normalized_freq_over_1_percent"] == pytest.approx(density[density > 0.01].sum() / density.sum())
    assert result.saebench_metrics()["model_performance_preservation"]["ce_loss_score"] is None
    # the per-text counts do not depend on where the batches cut the stream
    rows = torch.cat(acts)
    text = torch.cat(ids)
    cut = evaluate_core(dictionary, rows.split(7), CoreOptions(batch_size=7), text_index=text.split(7))
    np.testing.assert_allclose(cut.consistent_activation_heuristic or [], result.consistent_activation_heuristic or [])
    np.testing.assert_allclose(cut.feature_density or [], density)
    # a trailing one-row batch has no batch variance: it is left out of the legacy explained variance
    tail = evaluate_core(dictionary, [rows[:-1], rows[-1:]])
    assert tail.batches == 2 and math.isfinite(tail.explained_variance_legacy)


def _exact_sae(d: int) -> SparseDictionary:
    """ReLU SAE with W_enc = [I, −I], W_dec = [I; −I], no biases: relu(x) − relu(−x) = x exactly."""
    cfg = DictionaryConfig(
        kind="sae", d_in=d, d_out=d, d_sae=2 * d, activation="relu", use_bias=False, apply_b_dec_to_input=False
    )
    sae = SparseDictionary(cfg, generator=torch.Generator().manual_seed(0))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
    return sae


def test_tiny_llama_exact_dictionary_scores_one(tiny_store: Path, tiny_lm_dir: Path, corpus_file: Path) -> None:
    from dictlab.lm.loading import load_language_model

    store = ActivationStore(tiny_store)
    lm = load_language_model(tiny_lm_dir)
    texts = corpus_file.read_text().splitlines()[:48]
    rows = contiguous_rows(store, 0, 3000)
    options = CoreOptions(batch_size=1024, text_batch_size=16)
    kw = {"language_model": lm, "texts": texts, "module": store.entry.name}

    exact = evaluate_core(
        _exact_sae(store.width),
        rows.batches(store, options.batch_size),
        options,
        text_index=(store.text_index(a, min(a + 1024, 3000)) for a in range(0, 3000, 1024)),
        **kw,
    )
    assert exact.rows == 3000 and exact.batches == 3 and exact.module == store.entry.name
    assert exact.ce_loss_score == pytest.approx(1.0, abs=1e-9)
    assert exact.kl_div_with_sae == pytest.approx(0.0, abs=1e-9)
    assert exact.kl_div_score == pytest.approx(1.0, abs=1e-9)
    assert exact.kl_div_with_ablation is not None and exact.kl_div_with_ablation > 1e-4
    assert exact.explained_variance == pytest.approx(1.0, abs=1e-6) and exact.mse == pytest.approx(0.0, abs=1e-6)
    density = np.asarray(exact.feature_density)
    assert np.allclose(density[: store.width] + density[store.width :], 1.0)  # each coordinate is + or −
    # every text ends with [SEP], never kept, so each kept position has a next token to score
    assert exact.ce_tokens is not None and exact.ce_tokens == exact.kl_tokens and exact.ce_tokens > 0

    random = SparseDictionary(
        DictionaryConfig(kind="sae", d_in=store.width, d_out=store.width, d_sae=64, activation="relu"),
        generator=torch.Generator().manual_seed(0),
    )
    poor = evaluate_core(random, rows.batches(store, options.batch_size), options, **kw)
    assert poor.kl_div_with_sae is not None and poor.kl_div_with_sae > 1e-4
    assert poor.ce_loss_score is not None and abs(poor.ce_loss_score - 1) > 1e-3
    assert poor.consistent_activation_heuristic is None  # no text index given
    assert poor.explained_variance < 0.99


def test_bad_input_is_refused() -> None:
    cfg = DictionaryConfig(kind="transcoder", d_in=4, d_out=3, d_sae=8, activation="relu", apply_b_dec_to_input=False)
    with pytest.raises(ValueError, match="kind 'sae'"):
        evaluate_core(SparseDictionary(cfg), [np.zeros((2, 4), np.float32)])
    sae = _exact_sae(4)
    with pytest.raises(ValueError, match=r"batch 0 has shape \[2, 5\]"):
        evaluate_core(sae, [np.zeros((2, 5), np.float32)])
    with pytest.raises(ValueError, match="no activation rows"):
        evaluate_core(sae, [])
    with pytest.raises(ValueError, match="language_model, a non-empty texts list and module"):
        evaluate_core(sae, [np.ones((2, 4), np.float32)], texts=["a b"])
    two = [np.ones((2, 4), np.float32)] * 2
    with pytest.raises(ValueError, match="text_index ends before batch 1"):
        evaluate_core(sae, two, text_index=[np.zeros(2, np.int64)])
    with pytest.raises(ValueError, match=r"text_index of batch 0 has shape \[3\]"):
        evaluate_core(sae, two, text_index=[np.zeros(3, np.int64)] * 2)
