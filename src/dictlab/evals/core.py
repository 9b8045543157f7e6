"""SAELens/SAEBench core metrics of an SAE: reconstruction quality, shrinkage, sparsity, per-latent density and
weight statistics from store rows, and the CE-loss/KL scores from splicing the SAE into the language model.

The definitions are those of SAELens 6.54 (``decoderesearch/SAELens``, ``sae_lens/evals.py``:
``get_sparsity_and_variance_metrics``, ``get_downstream_reconstruction_metrics``, ``get_recons_loss``,
``get_featurewise_weight_based_metrics``) with SAEBench 0.6.0's additions (``adamkarvonen/SAEBench``,
``sae_bench/evals/core/main.py``: ``calculate_max_cosine_sim``, ``calculate_misc_metrics``), so that the numbers can
stand beside published SAELens/SAEBench ones. Per row x (an activation) with codes c = encode(x), x̂ = decode(c):

* ``l0`` = mean #{i : c_i ≠ 0}; ``l1`` = mean Σ|c_i|; ``mse`` = mean ‖x − x̂‖² (summed over dimensions);
  ``cossim`` = mean cos(x, x̂); ``l2_norm_in``/``l2_norm_out`` = mean ‖x‖ / ‖x̂‖; ``l2_ratio`` = mean ‖x̂‖/‖x‖
  (‖x‖ < 1e-4 divides by 1) — all means over rows (tokens), every row weighted equally.
* ``explained_variance`` = 1 − E‖x − x̂‖² / (E‖x‖² − ‖E x‖²) over all rows (float64 sums; SAELens'
  ``ExplainedVarianceCalculator``).
* ``explained_variance_legacy`` = mean over rows of 1 − ‖x − x̂‖² / ‖x − x̄_B‖², x̄_B the mean of the row's batch B;
  ``relative_reconstruction_bias`` = mean over batches of E_B‖x̂‖² / E_B⟨x, x̂⟩ (arXiv:2404.16014, eq. 10). These
  two depend on how rows are grouped into batches (SAELens: ``batch_size_prompts`` contexts; here the batches given;
  a batch of one row, which has no batch variance, is left out of ``explained_variance_legacy``).
* ``feature_density[i]`` = fraction of rows with c_i ≠ 0; ``consistent_activation_heuristic[i]`` = rows with
  c_i ≠ 0 / texts (SAELens: prompts) with some c_i ≠ 0; ``encoder_norm[i]`` = ‖W_enc[:, i]‖; ``encoder_bias[i]`` =
  b_enc[i]; ``encoder_decoder_cosine_sim[i]`` = cos(W_enc[:, i], W_dec[i]); ``max_encoder_cosine_sim[i]`` /
  ``max_decoder_cosine_sim[i]`` = the largest cosine of latent i's encoder column / decoder row with any other's.
* In the model: the clean pass, the pass with the module's output replaced by x̂ at the kept positions, and the pass
  with the module's output zeroed at every position. ``ce_loss_*`` = mean next-token cross-entropy at the kept
  positions that have a next token, ``kl_div_with_*`` = mean KL(clean ‖ spliced) at the kept positions, means over
  tokens of all texts; ``ce_loss_score`` = (CE_ablation − CE_sae) / (CE_ablation − CE_clean) and ``kl_div_score`` =
  (KL_ablation − KL_sae) / KL_ablation (1: as good as the clean model, 0: as bad as zero ablation).

Where dictlab differs from SAELens, and why:

* Store rows are what capture kept: no padding, no special tokens and (``skip_first``, default 1) not the first
  position of a text, the attention sink. SAELens drops only special-token positions (BOS, EOS, PAD): for a model
  whose contexts start with BOS the two agree with ``skip_first=0``; for one without BOS (SmolLM2) SAELens would also
  score the attention sink. The in-model part uses the same rule (``skip_first``, ``exclude_special_tokens``) for
  the positions it splices and scores.
* SAELens reads fixed-length contexts of concatenated texts (no padding); dictlab runs each text on its own,
  truncated to ``context_size`` tokens and padded in batches; padding is never spliced or scored, and a context's
  last kept position is scored for KL but not for CE (it has no next token), exactly as in SAELens.
* ``consistent_activation_heuristic`` counts texts (a store row's text) where SAELens counts context windows; a text
  counts once per contiguous run of its rows in the stream (store rows of a text are contiguous). It is None when no
  text index is given.
* ``token_stats`` are the numbers of rows and scored tokens actually used; SAELens reports the nominal
  ``context_size × batches × batch_size_prompts``, excluded tokens included.
* SAEBench 0.6.0's own copy of the functions differs from SAELens 6.54 in three places, where SAELens has since been
  fixed and dictlab follows SAELens: SAEBench divides ``mse`` once more by the batch's token count, computes
  ``explained_variance`` from the mean of squares instead of the squared mean, and omits ``abs`` in ``l1``; SAEBench
  counts density with c_i > 0, SAELens (and dictlab) with c_i ≠ 0 (the same for non-negative codes). Unlike
  SAEBench, which writes −1, non-computable values (0/0) are NaN here (null in JSON).
"""

import math
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from dictlab.lm.interventions import TokenBatch, resolve_module, token_batch
from dictlab.lm.loading import LanguageModel
from dictlab.lm.splice import reconstruct_with, spliced, zero_ablation
from dictlab.models.dictionary import SparseDictionary
from dictlab.progress import progress_bar

EVAL_TYPE_ID = "core"
"""SAEBench's ``eval_type_id`` of this evaluation."""

_CHUNK_ELEMENTS = 1 << 22
"""Float64 log-softmax is computed on chunks of about this many logits (32 MiB each)."""

_COSINE_CHUNK = 1024
"""Latents per block when computing the max cosine similarities ([chunk, d_sae] at a time)."""


class CoreOptions(BaseModel):
    """Knobs of the core evaluation."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(
        default=2048,
        ge=2,
        description="Store rows per batch for the streamed metrics (the caller cuts them: "
        "RowSelection.batches(store, batch_size)). explained_variance_legacy and "
        "relative_reconstruction_bias are per-batch statistics: SAEBench's default batch is 16 contexts × 128 tokens "
        "= 2048 tokens.",
    )
    text_batch_size: int = Field(default=16, ge=1, description="Texts per forward pass for the CE-loss/KL metrics.")
    context_size: int = Field(default=128, ge=2, description="Truncate each evaluation text to this many tokens.")
    skip_first: int = Field(
        default=1,
        ge=0,
        description="Leave the first N real positions of each text unspliced and unscored (the attention sink), as "
        "capture drops them; SAELens' rule is 0 (with BOS excluded as a special token).",
    )
    exclude_special_tokens: bool = Field(
        default=True, description="Leave special-token positions (BOS, EOS, PAD, …) unspliced and unscored."
    )
    compute_featurewise_density: bool = Field(
        default=True, description="Per-latent feature_density and consistent_activation_heuristic."
    )
    compute_featurewise_weights: bool = Field(
        default=True,
        description="Per-latent encoder_norm, encoder_bias, encoder_decoder_cosine_sim and the max encoder/decoder "
        "cosine similarities (an O(d_sae²·d_in) computation).",
    )


class CoreResult(BaseModel):
    """The core metrics of one SAE (SAELens/SAEBench definitions, see the module docstring); None: not computed."""

    rows: int = Field(description="Store rows the streamed metrics read.")
    batches: int = Field(description="Batches of rows (the per-batch metrics average over them).")
    l0: float
    l1: float
    mse: float
    explained_variance: float
    explained_variance_legacy: float
    cossim: float
    l2_norm_in: float
    l2_norm_out: float
    l2_ratio: float
    relative_reconstruction_bias: float
    module: str | None = Field(default=None, description="The module the SAE was spliced into.")
    texts: int | None = Field(default=None, description="Texts run through the model.")
    ce_tokens: int | None = Field(default=None, description="Next-token predictions scored for CE.")
    kl_tokens: int | None = Field(default=None, description="Positions scored for KL (the spliced positions).")
    ce_loss_score: float | None = None
    ce_loss_with_ablation: float | None = None
    ce_loss_with_sae: float | None = None
    ce_loss_without_sae: float | None = None
    kl_div_score: float | None = None
    kl_div_with_ablation: float | None = None
    kl_div_with_sae: float | None = None
    feature_density: list[float] | None = Field(default=None, description="[d_sae]")
    consistent_activation_heuristic: list[float] | None = Field(default=None, description="[d_sae]")
    encoder_bias: list[float] | None = Field(default=None, description="[d_sae]")
    encoder_norm: list[float] | None = Field(default=None, description="[d_sae]")
    encoder_decoder_cosine_sim: list[float] | None = Field(default=None, description="[d_sae]")
    max_encoder_cosine_sim: list[float] | None = Field(default=None, description="[d_sae]")
    max_decoder_cosine_sim: list[float] | None = Field(default=None, description="[d_sae]")

    def misc_metrics(self) -> dict[str, float | None]:
        """SAEBench's ``misc_metrics`` (``calculate_misc_metrics``) from the per-latent lists."""
        out: dict[str, float | None] = dict.fromkeys(
            (
                "freq_over_1_percent",
                "freq_over_10_percent",
                "normalized_freq_over_1_percent",
                "normalized_freq_over_10_percent",
                "average_max_encoder_cosine_sim",
                "average_max_decoder_cosine_sim",
                "frac_alive",
            )
        )
        if self.feature_density is not None:
            density = np.asarray(self.feature_density, dtype=np.float64)
            total = density.sum()
            for pct, threshold in (("1", 0.01), ("10", 0.1)):
                over = density > threshold
                out[f"freq_over_{pct}_percent"] = float(over.mean())
                out[f"normalized_freq_over_{pct}_percent"] = float(density[over].sum() / total) if total > 0 else 0.0
            out["frac_alive"] = float((density > 0).mean())
        if self.max_encoder_cosine_sim is not None and self.max_decoder_cosine_sim is not None:
            out["average_max_encoder_cosine_sim"] = float(np.mean(self.max_encoder_cosine_sim))
            out["average_max_decoder_cosine_sim"] = float(np.mean(self.max_decoder_cosine_sim))
        return out

    def saebench_metrics(self) -> dict[str, dict[str, float | int | None]]:
        """SAEBench's core ``eval_result_metrics``: category → metrics, with SAEBench's names."""
        return {
            "model_behavior_preservation": {
                "kl_div_score": self.kl_div_score,
                "kl_div_with_ablation": self.kl_div_with_ablation,
                "kl_div_with_sae": self.kl_div_with_sae,
            },
            "model_performance_preservation": {
                "ce_loss_score": self.ce_loss_score,
                "ce_loss_with_ablation": self.ce_loss_with_ablation,
                "ce_loss_with_sae": self.ce_loss_with_sae,
                "ce_loss_without_sae": self.ce_loss_without_sae,
            },
            "reconstruction_quality": {
                "explained_variance": self.explained_variance,
                "explained_variance_legacy": self.explained_variance_legacy,
                "mse": self.mse,
                "cossim": self.cossim,
            },
            "shrinkage": {
                "l2_norm_in": self.l2_norm_in,
                "l2_norm_out": self.l2_norm_out,
                "l2_ratio": self.l2_ratio,
                "relative_reconstruction_bias": self.relative_reconstruction_bias,
            },
            "sparsity": {"l0": self.l0, "l1": self.l1},
            "token_stats": {
                "total_tokens_eval_reconstruction": self.ce_tokens,
                "total_tokens_eval_sparsity_variance": self.rows,
            },
            "misc_metrics": self.misc_metrics(),
        }

    def saebench_details(self) -> list[dict[str, Any]]:
        """SAEBench's core ``eval_result_details``: one entry per latent (``CoreFeatureMetric``); [] when neither
        the density nor the weight statistics were computed."""
        columns = {
            "feature_density": self.feature_density,
            "consistent_activation_heuristic": self.consistent_activation_heuristic,
            "encoder_bias": self.encoder_bias,
            "encoder_norm": self.encoder_norm,
            "encoder_decoder_cosine_sim": self.encoder_decoder_cosine_sim,
            "max_decoder_cosine_sim": self.max_decoder_cosine_sim,
            "max_encoder_cosine_sim": self.max_encoder_cosine_sim,
        }
        lengths = {len(v) for v in columns.values() if v is not None}
        if not lengths:
            return []
        (d_sae,) = lengths
        return [
            {"index": i} | {name: None if values is None else values[i] for name, values in columns.items()}
            for i in range(d_sae)
        ]


def _check_sae(dictionary: SparseDictionary) -> None:
    cfg = dictionary.cfg
    if cfg.kind != "sae" or cfg.d_in != cfg.d_out:
        raise ValueError(
            f"the core metrics need an SAE that reconstructs its input (kind 'sae', d_in == d_out); got kind "
            f"{cfg.kind!r} with d_in={cfg.d_in}, d_out={cfg.d_out}"
        )
    if not dictionary.latents.whole:
        raise ValueError("the core metrics need the whole dictionary, not a latent shard (gather it first)")


def _total(values: Tensor) -> float:
    """Sum of all entries, accumulated in float64."""
    return values.sum(dtype=torch.float64).item()


class _StreamedStats:
    """Running sums of the store-streamed metrics; per-latent state is O(d_sae)."""

    def __init__(self, d_sae: int, density: bool) -> None:
        self.rows = 0
        self.batches = 0
        self.ev_legacy_rows = 0
        self.sums = dict.fromkeys(
            ("l0", "l1", "mse", "cossim", "l2_norm_in", "l2_norm_out", "l2_ratio", "ev_legacy", "rrb"), 0.0
        )
        self.sum_x: Tensor | None = None  # [d] float64
        self.sum_squared_norm = 0.0
        self.density = density
        self.fired = torch.zeros(d_sae, dtype=torch.int64)
        self.texts_fired: Tensor | None = None  # [d_sae] int64, when text ids are given
        self.last_text: int | None = None  # text of the previous batch's last row
        self.fired_on_last_text = torch.zeros(d_sae, dtype=torch.bool)  # latents that fired on it

    def update(self, x: Tensor, x_hat: Tensor, codes: Tensor, text_ids: Tensor | None) -> None:
        """x, x_hat: [n, d]; codes: [n, d_sae]; text_ids: [n] int64 or None."""
        s = self.sums
        n = x.shape[0]
        self.rows += n
        self.batches += 1
        norm_in, norm_out = x.norm(dim=-1), x_hat.norm(dim=-1)
        residual = (x - x_hat).pow(2).sum(dim=-1)
        s["l0"] += (codes != 0).sum().item()
        s["l1"] += _total(codes.abs())
        s["mse"] += _total(residual)
        s["cossim"] += _total(((x / norm_in[:, None]) * (x_hat / norm_out[:, None])).sum(dim=-1))
        s["l2_norm_in"] += _total(norm_in)
        s["l2_norm_out"] += _total(norm_out)
        s["l2_ratio"] += _total(norm_out / torch.where(norm_in.abs() < 1e-4, 1.0, norm_in))
        if n > 1:  # a lone row has no batch variance (SAELens' batches never have one row)
            batch_variance = (x - x.mean(dim=0)).pow(2).sum(dim=-1)
            s["ev_legacy"] += _total(1 - residual / batch_variance)
            self.ev_legacy_rows += n
        s["rrb"] += (norm_out.pow(2).mean() / (x * x_hat).sum(dim=-1).mean()).item()
        x64 = x.double()
        batch_sum = x64.sum(dim=0).cpu()
        self.sum_x = batch_sum if self.sum_x is None else self.sum_x + batch_sum
        self.sum_squared_norm += x64.pow(2).sum().item()
        if self.density:
            self._update_density(codes, text_ids)

    def _update_density(self, codes: Tensor, text_ids: Tensor | None) -> None:
        rows, cols = (codes != 0).nonzero(as_tuple=True)
        rows, cols = rows.cpu(), cols.cpu()
        d_sae = self.fired.shape[0]
        self.fired += torch.bincount(cols, minlength=d_sae)
        if text_ids is None:
            return
        if self.texts_fired is None:
            self.texts_fired = torch.zeros(d_sae, dtype=torch.int64)
        # runs of equal text ids in this batch; a (run, latent) pair counts one text for the latent
        run = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(text_ids[1:] != text_ids[:-1], 0)])
        keys = torch.unique(run[rows] * d_sae + cols)
        key_run, key_latent = keys // d_sae, keys % d_sae
        counts = torch.bincount(key_latent, minlength=d_sae)
        continues = self.last_text is not None and int(text_ids[0]) == self.last_text
        first_run = torch.zeros(d_sae, dtype=torch.bool)
        first_run[key_latent[key_run == 0]] = True
        if continues:  # the first run continues the previous batch's last text: count it once
            counts -= (first_run & self.fired_on_last_text).long()
        self.texts_fired += counts
        last = int(run[-1])
        on_last = torch.zeros(d_sae, dtype=torch.bool)
        on_last[key_latent[key_run == last]] = True
        self.fired_on_last_text = on_last | self.fired_on_last_text if continues and last == 0 else on_last
        self.last_text = int(text_ids[-1])

    def explained_variance(self) -> float:
        assert self.sum_x is not None
        mse = self.sums["mse"] / self.rows
        total_variance = self.sum_squared_norm / self.rows - (self.sum_x / self.rows).pow(2).sum().item()
        if total_variance < 1e-10:  # SAELens' convention for constant inputs
            return 1.0 if mse < 1e-10 else 0.0
        return 1.0 - mse / total_variance


def _max_other_cosine(vectors: Tensor) -> list[float]:
    """For each row of ``vectors`` [m, d]: its largest cosine similarity with any other row; [m]. Computed in the
    weights' dtype and on their device (SAEBench: the same), [chunk, m] at a time."""
    unit = torch.nn.functional.normalize(vectors, dim=1)
    out = torch.empty(unit.shape[0], dtype=unit.dtype)
    for start in range(0, unit.shape[0], _COSINE_CHUNK):
        block = unit[start : start + _COSINE_CHUNK] @ unit.T  # [chunk, m]
        index = torch.arange(block.shape[0], device=block.device)
        block[index, index + start] = -math.inf
        out[start : start + block.shape[0]] = block.max(dim=1).values.cpu()
    return out.tolist()


def weight_metrics(dictionary: SparseDictionary) -> dict[str, list[float]]:
    """Per-latent weight statistics [d_sae] each: ``encoder_bias``, ``encoder_norm``, ``encoder_decoder_cosine_sim``
    (SAELens' ``get_featurewise_weight_based_metrics``) and ``max_encoder_cosine_sim``, ``max_decoder_cosine_sim``
    (SAEBench's ``calculate_max_cosine_sim`` of W_enc's columns / W_dec's rows)."""
    _check_sae(dictionary)
    with torch.no_grad():
        W_enc, W_dec = dictionary.W_enc.detach(), dictionary.W_dec.detach()  # [d_in, d_sae], [d_sae, d_in]
        return {
            "encoder_bias": dictionary.b_enc.detach().double().cpu().tolist(),
            "encoder_norm": W_enc.double().norm(dim=0).cpu().tolist(),
            "encoder_decoder_cosine_sim": torch.nn.functional.cosine_similarity(W_dec.double(), W_enc.T.double(), dim=1)
            .cpu()
            .tolist(),
            "max_encoder_cosine_sim": _max_other_cosine(W_enc.T),
            "max_decoder_cosine_sim": _max_other_cosine(W_dec),
        }


class InModelSums(BaseModel):
    """Sums of the in-model metrics over texts (nats); :meth:`metrics` turns them into SAELens' means and scores."""

    ce_tokens: int = 0
    kl_tokens: int = 0
    ce_clean: float = 0.0
    ce_sae: float = 0.0
    ce_ablation: float = 0.0
    kl_sae: float = 0.0
    kl_ablation: float = 0.0

    def metrics(self) -> dict[str, float]:
        """``ce_loss_*`` and ``kl_div_*`` means and the two scores (NaN where a denominator is 0)."""
        if self.ce_tokens == 0 or self.kl_tokens == 0:
            raise ValueError("no position was scored: every text is shorter than skip_first + 2 kept tokens")
        clean, sae, ablation = (v / self.ce_tokens for v in (self.ce_clean, self.ce_sae, self.ce_ablation))
        kl_sae, kl_ablation = self.kl_sae / self.kl_tokens, self.kl_ablation / self.kl_tokens
        return {
            "ce_loss_score": (ablation - sae) / (ablation - clean) if ablation != clean else math.nan,
            "ce_loss_with_ablation": ablation,
            "ce_loss_with_sae": sae,
            "ce_loss_without_sae": clean,
            "kl_div_score": (kl_ablation - kl_sae) / kl_ablation if kl_ablation != 0 else math.nan,
            "kl_div_with_ablation": kl_ablation,
            "kl_div_with_sae": kl_sae,
        }


def _compare(clean: Tensor, other: Tensor, targets: Tensor, has_target: Tensor) -> tuple[float, float, float]:
    """(Σ CE of clean, Σ CE of other over the rows with a target, Σ KL(clean ‖ other) over all rows), in float64.

    clean, other: [n, vocab] logits; targets: [n] token ids (any value where there is none); has_target: [n] bool.
    """
    chunk = max(1, _CHUNK_ELEMENTS // clean.shape[-1])
    ce_clean = ce_other = kl = 0.0
    for start in range(0, clean.shape[0], chunk):
        rows = slice(start, start + chunk)
        log_p = torch.log_softmax(clean[rows].double(), dim=-1)
        log_q = torch.log_softmax(other[rows].double(), dim=-1)
        scored, target = has_target[rows], targets[rows, None]
        ce_clean -= log_p.gather(1, target)[scored].sum().item()
        ce_other -= log_q.gather(1, target)[scored].sum().item()
        kl += (log_p.exp() * (log_p - log_q)).sum().item()
    return ce_clean, ce_other, kl


def _logits(model: nn.Module, batch: TokenBatch) -> Tensor:
    return model(**batch.model_inputs(), use_cache=False).logits


def in_model_sums(
    model: nn.Module,
    module: str,
    dictionary: SparseDictionary,
    batches: Iterable[TokenBatch],
    progress: bool = False,
) -> InModelSums:
    """Run each batch of tokens clean, with ``dictionary``'s reconstruction spliced into ``module`` at the batch's
    kept positions, and with ``module``'s output zeroed at every position (SAELens' zero ablation), and sum the
    next-token CE at kept positions with a real next token and KL(clean ‖ ·) at kept positions.

    Args:
        model: called as ``model(input_ids=…, attention_mask=…, use_cache=False)`` with a ``.logits`` [batch, seq,
            vocab] result (a transformers causal LM).
        module: a module name, pattern or ``layer:N`` of ``model`` whose output is [batch, seq, d].
        batches: tokens and kept positions (``dictlab.lm.interventions.token_batch``).
    """
    _check_sae(dictionary)
    name = resolve_module(model, module)
    replace = reconstruct_with(dictionary)
    sums = InModelSums()
    model_training, dictionary_training = model.training, dictionary.training
    model.eval()
    dictionary.eval()
    try:
        with torch.inference_mode():
            for batch in progress_bar(batches, desc="core: in-model", unit=" batches", enabled=progress):
                keep = batch.keep.bool()
                if not keep.any():
                    continue
                real = batch.attention_mask.bool()
                has_target = torch.cat([real[:, 1:], torch.zeros_like(real[:, :1])], dim=1)[keep]  # [n]
                targets = torch.roll(batch.input_ids, -1, dims=1)[keep]  # [n]
                with spliced(model, name, replace, keep):  # first: a width mismatch shows before any other work
                    sae_rows = _logits(model, batch)[keep]
                clean_rows = _logits(model, batch)[keep]
                ce_clean, ce_sae, kl_sae = _compare(clean_rows, sae_rows, targets, has_target)
                del sae_rows
                with spliced(model, name, zero_ablation):
                    _, ce_ablation, kl_ablation = _compare(clean_rows, _logits(model, batch)[keep], targets, has_target)
                sums.ce_tokens += int(has_target.sum())
                sums.kl_tokens += int(keep.sum())
                sums.ce_clean += ce_clean
                sums.ce_sae += ce_sae
                sums.ce_ablation += ce_ablation
                sums.kl_sae += kl_sae
                sums.kl_ablation += kl_ablation
    finally:
        model.train(model_training)
        dictionary.train(dictionary_training)
    return sums


def _text_batches(lm: LanguageModel, texts: list[str], options: CoreOptions) -> Iterator[TokenBatch]:
    lengths = [len(ids) for ids in lm.tokenizer(texts, truncation=True, max_length=options.context_size)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])  # longest first: memory problems show at once
    for start in range(0, len(order), options.text_batch_size):
        yield token_batch(
            lm,
            [texts[i] for i in order[start : start + options.text_batch_size]],
            max_length=options.context_size,
            skip_first=options.skip_first,
            drop_special=options.exclude_special_tokens,
        )


def _as_rows(batch: Any, reference: Tensor, number: int) -> Tensor:
    x = torch.as_tensor(batch).to(device=reference.device, dtype=reference.dtype)
    if x.dim() != 2 or x.shape[1] != reference.shape[0]:
        raise ValueError(f"batch {number} has shape {list(x.shape)}; the dictionary needs [rows, {reference.shape[0]}]")
    if not torch.isfinite(x).all():
        raise ValueError(f"batch {number} contains NaN or Inf")
    return x


def evaluate_core(
    dictionary: SparseDictionary,
    batches: Iterable[Any],
    options: CoreOptions | None = None,
    *,
    text_index: Iterable[Any] | None = None,
    language_model: LanguageModel | None = None,
    texts: list[str] | None = None,
    module: str | None = None,
    progress: bool = False,
) -> CoreResult:
    """The core metrics of ``dictionary`` (definitions and differences from SAELens in the module docstring).

    Args:
        dictionary: an SAE acting on raw activations (kind ``sae``).
        batches: raw activation rows, arrays or tensors [n, d_in] (e.g. ``RowSelection.batches(store, batch_size)``);
            read once, one batch at a time.
        text_index: optional, aligned with ``batches``: the text of every row, [n] ints (``store.text_index``);
            needed for ``consistent_activation_heuristic``.
        options: the knobs (:class:`CoreOptions`; default when None).
        language_model: the causal LM; with ``texts`` and ``module`` the CE-loss/KL metrics splice the SAE into
            ``module`` of it on ``texts``.
        texts: the texts of the CE-loss/KL metrics.
        module: the module whose output the SAE reconstructs.
        progress: show a progress bar.
    """
    options = options or CoreOptions()
    _check_sae(dictionary)
    if language_model is not None or texts is not None:
        if language_model is None or not texts or module is None:
            raise ValueError("the CE-loss/KL metrics need language_model, a non-empty texts list and module together")
        if not language_model.is_causal:
            raise ValueError(f"the CE-loss/KL metrics need a causal LM; {language_model.name!r} is not one")
    reference = dictionary.W_enc
    stats = _StreamedStats(dictionary.d_sae, options.compute_featurewise_density)
    ids_iter = iter(text_index) if text_index is not None else None
    training = dictionary.training
    dictionary.eval()
    try:
        with torch.inference_mode():
            for number, batch in enumerate(progress_bar(batches, desc="core", unit=" batches", enabled=progress)):
                x = _as_rows(batch, reference, number)
                ids = None
                if ids_iter is not None:
                    raw_ids = next(ids_iter, None)
                    if raw_ids is None:
                        raise ValueError(f"text_index ends before batch {number}: it must give one array per batch")
                    ids = torch.as_tensor(raw_ids, dtype=torch.int64).cpu()
                    if ids.shape != (x.shape[0],):
                        raise ValueError(f"text_index of batch {number} has shape {list(ids.shape)}, not [{len(x)}]")
                if x.shape[0] == 0:
                    continue
                codes = dictionary.encode(x)
                stats.update(x, dictionary.decode(codes), codes, ids)
    finally:
        dictionary.train(training)
    if stats.rows == 0:
        raise ValueError("no activation rows to evaluate on")

    n, s = stats.rows, stats.sums
    values: dict[str, Any] = {
        "rows": n,
        "batches": stats.batches,
        "l0": s["l0"] / n,
        "l1": s["l1"] / n,
        "mse": s["mse"] / n,
        "explained_variance": stats.explained_variance(),
        "explained_variance_legacy": s["ev_legacy"] / stats.ev_legacy_rows if stats.ev_legacy_rows else math.nan,
        "cossim": s["cossim"] / n,
        "l2_norm_in": s["l2_norm_in"] / n,
        "l2_norm_out": s["l2_norm_out"] / n,
        "l2_ratio": s["l2_ratio"] / n,
        "relative_reconstruction_bias": s["rrb"] / stats.batches,
    }
    if options.compute_featurewise_density:
        values["feature_density"] = (stats.fired.double() / n).tolist()
        if stats.texts_fired is not None:
            values["consistent_activation_heuristic"] = [
                a / b if b else math.nan for a, b in zip(stats.fired.tolist(), stats.texts_fired.tolist(), strict=True)
            ]
    if options.compute_featurewise_weights:
        values |= weight_metrics(dictionary)
    if language_model is not None and texts and module is not None:
        sums = in_model_sums(
            language_model.model,
            module,
            dictionary,
            _text_batches(language_model, texts, options),
            progress=progress,
        )
        values |= sums.metrics() | {
            "module": resolve_module(language_model.model, module),
            "texts": len(texts),
            "ce_tokens": sums.ce_tokens,
            "kl_tokens": sums.kl_tokens,
        }
    return CoreResult.model_validate(values)
