"""In-model evaluation of an SAE: splice its reconstruction into a causal LM and measure the next-token loss.

For every batch of texts three forward passes are run: clean, spliced (the module's output replaced by the SAE's
reconstruction at the kept positions) and zero-ablated (replaced by zeros at the same positions). From them:

* ``ce_increase = ce_spliced − ce_clean`` and ``kl`` = mean KL(clean ‖ spliced) of the next-token distributions;
* ``ce_loss_recovered = (ce_zero − ce_spliced) / (ce_zero − ce_clean)`` as in SAELens/SAEBench: 1 for a perfect
  reconstruction, 0 for one no better than zero ablation.

Next-token losses are scored at every position whose target (the next token) is a real, non-padding token and
averaged over all such tokens. Splicing uses ``kept_positions``, the rules by which activations are captured for
training, so the SAE only sees the kind of positions it was trained on.
"""

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from dictlab.lm.loading import LanguageModel
from dictlab.lm.modules import resolve_modules
from dictlab.lm.positions import kept_positions
from dictlab.lm.splice import check_sae, reconstruct_with, spliced, zero_ablation
from dictlab.metrics.reconstruction import ReconstructionStats
from dictlab.models.dictionary import SparseDictionary
from dictlab.progress import progress_bar

_CHUNK_ELEMENTS = 1 << 22
"""Float64 log-softmax is computed on chunks of about this many logits (32 MiB each)."""


@dataclass
class InModelReport:
    """Result of ``evaluate_in_model``; cross-entropies and KL are in nats per scored token."""

    module: str
    """Name of the spliced module (e.g. ``model.layers.15``)."""
    tokens: int
    """Number of next-token predictions scored."""
    spliced_positions: int
    """Number of positions whose activation was replaced."""
    ce_clean: float
    ce_spliced: float
    ce_zero_ablation: float
    ce_increase: float
    """ce_spliced − ce_clean."""
    kl: float
    """Mean KL(clean ‖ spliced) of the next-token distributions."""
    ce_loss_recovered: float
    """(ce_zero − ce_spliced) / (ce_zero − ce_clean); NaN when zero ablation does not change the loss."""
    fvu: float
    """Fraction of variance unexplained of the reconstructions at the spliced positions."""
    l0: float
    """Mean number of active latents per spliced position."""

    def to_dict(self) -> dict[str, object]:
        """Plain dict for JSON; non-finite floats become None."""
        return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(self).items()}


def _next_token_scores(clean: Tensor, spliced_logits: Tensor, targets: Tensor) -> tuple[float, float, float]:
    """Sums over rows of CE(clean), CE(spliced) and KL(clean ‖ spliced), in float64.

    clean, spliced_logits: [n, vocab] logits; targets: [n] token ids.
    """
    chunk = max(1, _CHUNK_ELEMENTS // clean.shape[-1])
    ce_clean = ce_spliced = kl = 0.0
    for start in range(0, clean.shape[0], chunk):
        rows = slice(start, start + chunk)
        target = targets[rows, None]
        log_p = torch.log_softmax(clean[rows].double(), dim=-1)
        log_q = torch.log_softmax(spliced_logits[rows].double(), dim=-1)
        ce_clean -= log_p.gather(1, target).sum().item()
        ce_spliced -= log_q.gather(1, target).sum().item()
        kl += (log_p.exp() * (log_p - log_q)).sum().item()
    return ce_clean, ce_spliced, kl


def _cross_entropy_sum(logits: Tensor, targets: Tensor) -> float:
    """Σ CE over rows in float64; logits: [n, vocab], targets: [n]."""
    chunk = max(1, _CHUNK_ELEMENTS // logits.shape[-1])
    total = 0.0
    for start in range(0, logits.shape[0], chunk):
        rows = slice(start, start + chunk)
        log_p = torch.log_softmax(logits[rows].double(), dim=-1)
        total -= log_p.gather(1, targets[rows, None]).sum().item()
    return total


def _scored_logits(model: nn.Module, input_ids: Tensor, attention_mask: Tensor, scored: Tensor) -> Tensor:
    """Logits [n, vocab] of the positions flagged in ``scored`` [batch, seq - 1]."""
    out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    return out.logits[:, :-1][scored]


def evaluate_in_model(
    lm: LanguageModel,
    module: str,
    dictionary: SparseDictionary,
    texts: list[str],
    batch_size: int = 8,
    max_length: int = 128,
    skip_first: int = 1,
    drop_special: bool = True,
    progress: bool = False,
) -> InModelReport:
    """Splice ``dictionary``'s reconstruction into ``module`` of ``lm`` and compare next-token losses on ``texts``.

    Args:
        lm: a causal language model (``lm.is_causal``).
        module: the module whose output [batch, seq, d] is replaced (a name, a pattern or ``layer:N``; it must
            match exactly one module).
        dictionary: an SAE with ``d_in == d`` (evaluated in eval mode; its mode is restored afterwards).
        texts: the evaluation texts, tokenized in batches of ``batch_size`` sorted by length, truncated to
            ``max_length`` tokens.
        skip_first: leave the first ``skip_first`` real positions of each text unspliced (see
            ``kept_positions``); all positions with a real next token are scored.
        drop_special: leave special-token positions (BOS, CLS, SEP, EOS) unspliced.
        progress: show progress over batches (a bar on a terminal, periodic lines otherwise).
    """
    if not lm.is_causal:
        raise ValueError(
            f"in-model evaluation needs a causal LM with a language-modelling head; {lm.name!r} is not one"
        )
    if not texts:
        raise ValueError("no texts to evaluate on")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 (a token and its successor), got {max_length}")
    check_sae(dictionary)
    model, tokenizer = lm.model, lm.tokenizer
    names = resolve_modules(model, [module])
    if len(names) != 1:
        raise ValueError(f"module {module!r} matches {len(names)} modules ({', '.join(names[:4])}…); name one")
    name = names[0]
    device = next(model.parameters()).device

    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])  # longest first: memory problems show at once
    batches = [[texts[i] for i in order[s : s + batch_size]] for s in range(0, len(order), batch_size)]

    stats = ReconstructionStats()
    replace = reconstruct_with(dictionary, record=stats.update)
    tokens = 0
    ce_clean = ce_spliced = ce_zero = kl = 0.0
    model_training, dictionary_training = model.training, dictionary.training
    model.eval()
    dictionary.eval()
    try:
        with torch.inference_mode():
            for batch in progress_bar(batches, desc="in-model eval", unit=" batches", enabled=progress):
                encoded = tokenizer(
                    batch,
                    padding=True,
                    truncation=True,
                    max_length=max_length,
                    return_special_tokens_mask=True,
                    return_tensors="pt",
                )
                input_ids = encoded["input_ids"].to(device)
                attention_mask = encoded["attention_mask"].to(device)
                special = encoded.get("special_tokens_mask")
                keep = kept_positions(
                    attention_mask, None if special is None else special.to(device), skip_first, drop_special
                )
                real = attention_mask.bool()
                scored = real[:, :-1] & real[:, 1:]  # [batch, seq - 1]: position t predicts a real token t + 1
                if not scored.any():
                    continue
                targets = input_ids[:, 1:][scored]

                inputs = (model, input_ids, attention_mask, scored)
                with spliced(model, name, replace, keep):  # first: a width mismatch shows before any other work
                    spliced_logits = _scored_logits(*inputs)
                clean_ce, spliced_ce, batch_kl = _next_token_scores(_scored_logits(*inputs), spliced_logits, targets)
                del spliced_logits
                with spliced(model, name, zero_ablation, keep):
                    ce_zero += _cross_entropy_sum(_scored_logits(*inputs), targets)
                ce_clean += clean_ce
                ce_spliced += spliced_ce
                kl += batch_kl
                tokens += targets.numel()
    finally:
        model.train(model_training)
        dictionary.train(dictionary_training)

    if tokens == 0:
        raise ValueError("the texts give no next-token prediction to score (every text has fewer than 2 tokens)")
    if stats.n_samples == 0:
        raise ValueError(
            f"no position was spliced (skip_first={skip_first}, drop_special={drop_special} keep none of the tokens)"
        )
    recon = stats.result()
    ce_clean, ce_spliced, ce_zero, kl = ce_clean / tokens, ce_spliced / tokens, ce_zero / tokens, kl / tokens
    denominator = ce_zero - ce_clean
    return InModelReport(
        module=name,
        tokens=tokens,
        spliced_positions=stats.n_samples,
        ce_clean=ce_clean,
        ce_spliced=ce_spliced,
        ce_zero_ablation=ce_zero,
        ce_increase=ce_spliced - ce_clean,
        kl=kl,
        ce_loss_recovered=(ce_zero - ce_spliced) / denominator if denominator != 0 else math.nan,
        fvu=recon["fvu"],
        l0=recon["l0"],
    )
