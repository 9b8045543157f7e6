"""Read and edit a dictionary's latents inside a model: record codes, ablate, clamp and steer latents.

``attach`` hooks one module of a model. On every forward pass it encodes the module's output x at the kept
positions (``keep``, by default every position; ``token_batch`` computes the mask capture uses: no padding, no
special tokens, not the first ``skip_first`` positions) and records the codes c = encode(x). Interventions edit the
codes to c' and the module's output becomes

    x + Σ_i (c'_i − c_i) · W_dec[i]        (summed over the latents an intervention changed)

which equals decode(c') + e with the SAE's error term e = x − decode(c) kept. Nothing else about the output moves:

* with no intervention (or one that changes no code) the hook returns the module's output object itself, so the
  model's logits are bit-for-bit those of the clean model (KL exactly 0);
* a position where no code changed (an ablated latent that did not fire there, a position outside an
  intervention's ``positions``) keeps its output bit-identical: only changed positions are written;
* the change is computed from the changed latents' decoder rows only, never from a full decode, so b_dec and the
  reconstruction error cancel exactly.

Units: the deltas are in the module's units because ``decode`` is. Dictionaries trained on normalised activations
are exported with the input scale s folded into their weights (``SparseDictionary.fold_input_scale_``: the decoder
rows then have norm 1/s), so ``Steer(i, alpha)`` adds exactly ``alpha · W_dec[i]`` as the module sees it — the
change the latent makes when its code rises by alpha — and ``Clamp(i, v)`` sets the code to v in the code units
``encode`` reports. Steering by a multiple of the module's norm needs alpha scaled by ‖W_dec[i]‖ accordingly.

``latent_codes`` reads the codes of texts per kept token; ``ablation_effects`` measures, for many (context,
latent) pairs in batches, how ablating a latent changes the log-probability of every next token.
"""

import math
import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dictlab.lm.loading import LanguageModel
from dictlab.lm.modules import resolve_modules
from dictlab.lm.positions import kept_positions
from dictlab.lm.splice import check_sae, edited, keep_mask
from dictlab.models.dictionary import SparseDictionary

PositionSpec = Tensor | Sequence[tuple[int, int]]
"""Where an intervention applies: a [batch, seq] bool mask, or (batch index, position) pairs. Interventions act
only at kept positions; positions outside ``keep`` are ignored."""


def _latent_tuple(latents: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(latents, Sequence):
        return tuple(operator.index(latent) for latent in latents)
    return (operator.index(latents),)


@dataclass(frozen=True)
class Ablate:
    """Set the codes of ``latents`` to 0 (at ``positions``, default every kept position)."""

    latents: int | Sequence[int]
    positions: PositionSpec | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "latents", _latent_tuple(self.latents))


@dataclass(frozen=True)
class Clamp:
    """Set the codes of ``latents`` to ``value`` (at ``positions``, default every kept position)."""

    latents: int | Sequence[int]
    value: float
    positions: PositionSpec | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "latents", _latent_tuple(self.latents))


@dataclass(frozen=True)
class Steer:
    """Add ``alpha · W_dec[latent]`` to the module's output (raise the code by ``alpha``) at ``positions``."""

    latent: int
    alpha: float
    positions: PositionSpec | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "latent", operator.index(self.latent))


Intervention = Ablate | Clamp | Steer
"""An edit of the codes; a sequence of them is applied in order (a later one sees the codes an earlier one set)."""


def _latents_of(intervention: Intervention) -> tuple[int, ...]:
    if isinstance(intervention, Steer):
        return (intervention.latent,)
    return _latent_tuple(intervention.latents)


@dataclass
class Attached:
    """What ``attach`` recorded, one entry per forward pass run inside the context (oldest first).

    Codes are in the dictionary's dtype and on its device; ``positions`` masks are on the model's device.
    """

    module: str
    """The hooked module (e.g. ``model.layers.0``)."""
    codes_per_pass: list[Tensor] = field(default_factory=list)
    """Per pass: codes [batch, seq, d_sae] = encode(x) before any intervention; zero at positions not kept."""
    positions_per_pass: list[Tensor] = field(default_factory=list)
    """Per pass: [batch, seq] bool, True at the kept (encoded) positions."""
    changed_per_pass: list[Tensor] = field(default_factory=list)
    """Per pass: [batch, seq] bool, True where an intervention changed the module's output."""

    def _last(self, entries: list[Tensor]) -> Tensor:
        if not entries:
            raise RuntimeError(f"nothing recorded at {self.module}: run a forward pass inside attach(record=True)")
        return entries[-1]

    @property
    def codes(self) -> Tensor:
        """Codes [batch, seq, d_sae] of the latest forward pass (zero at positions not kept)."""
        return self._last(self.codes_per_pass)

    @property
    def positions(self) -> Tensor:
        """Kept positions [batch, seq] (bool) of the latest forward pass."""
        return self._last(self.positions_per_pass)

    @property
    def changed(self) -> Tensor:
        """Positions [batch, seq] (bool) whose output the interventions changed in the latest forward pass."""
        return self._last(self.changed_per_pass)

    def clear(self) -> None:
        """Forget everything recorded so far."""
        self.codes_per_pass.clear()
        self.positions_per_pass.clear()
        self.changed_per_pass.clear()


def resolve_module(model: nn.Module, module: str) -> str:
    """The one module name ``module`` (a name, a pattern or ``layer:N``) matches; ValueError otherwise."""
    names = resolve_modules(model, [module])
    if len(names) != 1:
        raise ValueError(f"module {module!r} matches {len(names)} modules ({', '.join(names[:4])}…); name one")
    return names[0]


def _check_dictionary(dictionary: SparseDictionary, interventions: Sequence[Intervention]) -> None:
    check_sae(dictionary)
    if not dictionary.latents.whole:
        raise ValueError("interventions need the whole dictionary, not a latent shard (gather it first)")
    for intervention in interventions:
        if not isinstance(intervention, (Ablate, Clamp, Steer)):
            raise ValueError(f"unknown intervention {intervention!r}: use Ablate, Clamp or Steer")
        for latent in _latents_of(intervention):
            if not 0 <= latent < dictionary.d_sae:
                raise ValueError(
                    f"latent {latent} is out of range: the dictionary has {dictionary.d_sae} latents "
                    f"(0 … {dictionary.d_sae - 1})"
                )
        if isinstance(intervention, Clamp) and not math.isfinite(intervention.value):
            raise ValueError(f"Clamp value must be finite, got {intervention.value}")
        if isinstance(intervention, Steer) and not math.isfinite(intervention.alpha):
            raise ValueError(f"Steer alpha must be finite, got {intervention.alpha}")


def _position_mask(spec: PositionSpec, shape: torch.Size, device: torch.device) -> Tensor:
    """``spec`` as a [batch, seq] bool mask of ``shape``."""
    if isinstance(spec, Tensor):
        if spec.dtype != torch.bool or spec.shape != shape:
            raise ValueError(
                f"intervention positions must be a bool mask of shape {list(shape)} (or (batch, position) pairs); "
                f"got a {spec.dtype} tensor of shape {list(spec.shape)}"
            )
        return spec.to(device)
    pairs = torch.tensor([[operator.index(b), operator.index(t)] for b, t in spec], dtype=torch.long).reshape(-1, 2)
    outside = (pairs < 0).any(1) | (pairs[:, 0] >= shape[0]) | (pairs[:, 1] >= shape[1])
    if outside.any():
        b, t = pairs[outside][0].tolist()
        raise ValueError(f"intervention position {(b, t)} is outside the batch of shape {list(shape)}")
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[pairs[:, 0], pairs[:, 1]] = True
    return mask.to(device)


def _code_changes(
    codes: Tensor, interventions: Sequence[Intervention], where: Tensor, shape: torch.Size
) -> tuple[list[int], Tensor]:
    """The latents the interventions touch and the code changes [n, len(latents)] (c' − c) at the kept rows.

    codes: [n, d_sae] at the kept positions ``where`` [n, 2] (batch, position) of a [batch, seq] pass.
    """
    latents = sorted({latent for v in interventions for latent in _latents_of(v)})
    column = {latent: j for j, latent in enumerate(latents)}
    change = codes.new_zeros(codes.shape[0], len(latents))
    for v in interventions:
        if v.positions is None:
            rows = torch.ones(codes.shape[0], dtype=torch.bool, device=codes.device)
        else:
            mask = _position_mask(v.positions, shape, where.device)
            rows = mask[where[:, 0], where[:, 1]].to(codes.device)
        if isinstance(v, Steer):
            change[rows, column[v.latent]] += v.alpha
            continue
        for latent in _latents_of(v):
            target = 0.0 if isinstance(v, Ablate) else v.value
            change[rows, column[latent]] = target - codes[rows, latent]
    return latents, change


@contextmanager
def attach(
    model: nn.Module | LanguageModel,
    module_name: str,
    dictionary: SparseDictionary,
    *,
    keep: Tensor | None = None,
    interventions: Sequence[Intervention] = (),
    record: bool = True,
) -> Iterator[Attached]:
    """Hook ``dictionary`` onto the output [batch, seq, d] of ``module_name``: record codes, apply interventions.

    Args:
        model: the model (or a ``LanguageModel``) whose forward passes run inside the context.
        module_name: a module name, pattern or ``layer:N`` matching exactly one module.
        dictionary: an SAE with ``d_in == d`` (put in eval mode within the context, its mode restored after).
        keep: [batch, seq] bool, the positions encoded and intervened on (None: all); it must match every pass.
        interventions: edits of the codes, applied in order (see the module docstring for what the output becomes).
        record: record codes [batch, seq, d_sae] and masks per pass in the yielded ``Attached`` (False saves
            the memory when only the interventions matter).

    The hook keeps autograd's mode: run the passes under ``torch.no_grad()`` unless gradients are wanted (then the
    codes and the edited output carry them). With ``keep=None`` it also works with ``generate`` (one pass per step).
    """
    net = model.model if isinstance(model, LanguageModel) else model
    name = resolve_module(net, module_name)
    interventions = tuple(interventions)
    _check_dictionary(dictionary, interventions)
    attached = Attached(module=name)
    reference = dictionary.W_dec

    def edit(h: Tensor) -> Tensor | None:
        check_sae(dictionary, h.shape[-1], name)
        mask = keep_mask(h, keep, name)
        where = mask.nonzero()  # [n, 2]: (batch, position) of each kept row, row-major
        x = h[mask].to(dtype=reference.dtype, device=reference.device)  # [n, d]
        codes = dictionary.encode(x) if x.shape[0] else x.new_zeros(0, dictionary.d_sae)  # [n, d_sae]
        changed_rows = torch.zeros(codes.shape[0], dtype=torch.bool, device=codes.device)
        new: Tensor | None = None
        if interventions and codes.shape[0]:
            latents, change = _code_changes(codes, interventions, where, mask.shape)
            changed_rows = (change != 0).any(dim=1)
            if changed_rows.any():
                # delta = Σ_i (c'_i − c_i) W_dec[i] over the touched latents only: b_dec and the error cancel.
                delta = change[changed_rows] @ reference[latents]  # [m, d]
                at = where[changed_rows.to(where.device)]
                compute = torch.promote_types(h.dtype, reference.dtype)
                rows = h[at[:, 0], at[:, 1]].to(compute) + delta.to(device=h.device, dtype=compute)
                new = h.clone()
                new[at[:, 0], at[:, 1]] = rows.to(h.dtype)
        if record:
            dense = codes.new_zeros(*mask.shape, dictionary.d_sae)
            dense[mask.to(codes.device)] = codes
            changed_mask = torch.zeros_like(mask)
            changed_mask[mask] = changed_rows.to(mask.device)
            attached.codes_per_pass.append(dense)
            attached.positions_per_pass.append(mask)
            attached.changed_per_pass.append(changed_mask)
        return new

    training = dictionary.training
    dictionary.eval()
    try:
        with edited(net, name, edit):
            yield attached
    finally:
        dictionary.train(training)


@dataclass
class TokenBatch:
    """Tokenized texts and the positions capture keeps."""

    input_ids: Tensor
    """[batch, seq] token ids (padded)."""
    attention_mask: Tensor
    """[batch, seq], 1 on real tokens."""
    keep: Tensor
    """[batch, seq] bool: the kept positions (``kept_positions``)."""

    def model_inputs(self) -> dict[str, Tensor]:
        """Keyword arguments for the model's forward pass."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def token_batch(
    lm: LanguageModel, texts: list[str], *, max_length: int = 128, skip_first: int = 1, drop_special: bool = True
) -> TokenBatch:
    """Tokenize ``texts`` (padding, truncation to ``max_length``) onto the model's device, with the positions kept
    as capture keeps them: no padding, no special tokens (``drop_special``), not the first ``skip_first``."""
    encoded = lm.tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
        return_tensors="pt",
    )
    device = _device(lm.model)
    attention_mask = encoded["attention_mask"].to(device)
    special = encoded.get("special_tokens_mask")
    keep = kept_positions(attention_mask, None if special is None else special.to(device), skip_first, drop_special)
    return TokenBatch(encoded["input_ids"].to(device), attention_mask, keep)


@dataclass
class TokenCodes:
    """Codes of every kept token of a list of texts, in text order, then position order."""

    codes: Tensor
    """[n_tokens, d_sae] in the dictionary's dtype and on its device."""
    token_ids: Tensor
    """[n_tokens] int64: the token at each row."""
    text_index: Tensor
    """[n_tokens] int64: the text it belongs to."""
    positions: Tensor
    """[n_tokens] int64: its position among its text's tokens (0 = the first token, e.g. BOS/CLS)."""


class _Stop(Exception):
    """Raised after the hooked module to skip the rest of the forward pass."""


@contextmanager
def _stop_after(model: nn.Module, name: str) -> Iterator[None]:
    def hook(_module: nn.Module, _args: object, _output: object) -> None:
        raise _Stop

    handle = model.get_submodule(name).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def latent_codes(
    lm: LanguageModel,
    module: str,
    dictionary: SparseDictionary,
    texts: list[str],
    *,
    batch_size: int = 8,
    max_length: int = 128,
    skip_first: int = 1,
    drop_special: bool = True,
) -> TokenCodes:
    """Codes of ``dictionary`` on the output of ``module`` at every kept token of ``texts`` (``token_batch``'s
    rules). The forward pass stops after ``module``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model = lm.model
    name = resolve_module(model, module)
    parts: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []
    model_training = model.training
    model.eval()
    try:
        with torch.no_grad():  # not inference_mode: callers may edit the returned tensors
            for start in range(0, len(texts), batch_size):
                batch = token_batch(
                    lm,
                    texts[start : start + batch_size],
                    max_length=max_length,
                    skip_first=skip_first,
                    drop_special=drop_special,
                )
                hooks = attach(model, name, dictionary, keep=batch.keep)
                with hooks as attached, _stop_after(model, name), suppress(_Stop):
                    model(**batch.model_inputs(), use_cache=False)
                keep = batch.keep
                rank = torch.cumsum(batch.attention_mask.long(), dim=1) - 1
                rows = torch.arange(keep.shape[0], device=keep.device)[:, None].expand_as(keep)
                parts.append(
                    (
                        attached.codes[keep.to(attached.codes.device)],
                        batch.input_ids[keep],
                        rows[keep] + start,
                        rank[keep],
                    )
                )
    finally:
        model.train(model_training)
    if not parts:
        empty = torch.zeros(0, dtype=torch.long)
        return TokenCodes(dictionary.W_dec.new_zeros(0, dictionary.d_sae), empty, empty, empty)
    codes, ids, text_index, positions = (torch.cat([p[i] for p in parts]) for i in range(4))
    return TokenCodes(codes, ids.cpu(), text_index.cpu(), positions.cpu())


Context = tuple[Tensor | Sequence[int], int, int | None]
"""(token_ids [seq], latent, position or None) for ``ablation_effects``."""


def _next_token_log_probs(logits: Tensor, ids: Tensor, length: int) -> Tensor:
    """log p(ids[t + 1]) at t < length − 1 in float64, from one sequence's logits [seq, vocab]; [length − 1]."""
    log_p = torch.log_softmax(logits[: length - 1].double(), dim=-1)
    return log_p.gather(1, ids[1:length, None]).squeeze(1)


def ablation_effects(
    lm: LanguageModel,
    module: str,
    dictionary: SparseDictionary,
    contexts: Sequence[Context],
    *,
    batch_size: int = 16,
    skip_first: int = 1,
    drop_special: bool = True,
) -> list[Tensor]:
    """For each (token_ids, latent, position): the change of log p(next token) when ``latent`` is ablated.

    Args:
        contexts: token ids [seq] (unpadded), the latent and the position where it is ablated (None: at every
            kept position). Special tokens (the tokenizer's ``all_special_ids``) and the first ``skip_first``
            positions are never ablated, as capture never keeps them; naming such a position is a ValueError.
        batch_size: contexts per forward pass (padded on the right; a clean and an ablated pass per batch).

    Returns:
        Per context a float64 CPU tensor [seq]: entry t is log p_ablated(token t+1) − log p_clean(token t+1),
        the effect on predicting token t + 1; the last entry is NaN. Where no code changed (the latent does not
        fire there) and before the ablated position the effect is exactly 0.
    """
    if not lm.is_causal:
        raise ValueError(f"ablation effects need a causal LM with a language-modelling head; {lm.name!r} is not one")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model, tokenizer = lm.model, lm.tokenizer
    name = resolve_module(model, module)
    device = _device(model)
    special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long, device=device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    prepared: list[tuple[Tensor, int, int | None, Tensor]] = []
    for number, (token_ids, latent, position) in enumerate(contexts):
        ids = torch.as_tensor(token_ids, dtype=torch.long).to(device)
        if ids.dim() != 1 or ids.numel() == 0:
            raise ValueError(f"context {number}: token_ids must be a non-empty [seq] tensor, got {list(ids.shape)}")
        _check_dictionary(dictionary, [Ablate(latent)])
        keep = kept_positions(
            torch.ones(1, ids.numel(), dtype=torch.long, device=device),
            torch.isin(ids, special_ids)[None],
            skip_first,
            drop_special,
        )[0]
        if position is not None:
            p = operator.index(position)
            if not -ids.numel() <= p < ids.numel():
                raise ValueError(f"context {number}: position {p} is outside its {ids.numel()} tokens")
            p %= ids.numel()
            if not keep[p]:
                raise ValueError(
                    f"context {number}: position {p} is never intervened on (a special token or among the first "
                    f"skip_first={skip_first} positions)"
                )
            position = p
        prepared.append((ids, operator.index(latent), position, keep))

    effects: list[Tensor] = []
    model_training = model.training
    model.eval()
    try:
        with torch.no_grad():  # not inference_mode: callers may edit the returned tensors
            for start in range(0, len(prepared), batch_size):
                batch = prepared[start : start + batch_size]
                width = max(ids.numel() for ids, *_ in batch)
                input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long, device=device)
                attention_mask = torch.zeros_like(input_ids)
                keep = torch.zeros(len(batch), width, dtype=torch.bool, device=device)
                targets: dict[int, Tensor] = {}  # latent -> where it is ablated, [batch, seq]
                for row, (ids, latent, position, kept) in enumerate(batch):
                    n = ids.numel()
                    input_ids[row, :n] = ids
                    attention_mask[row, :n] = 1
                    keep[row, :n] = kept
                    where = targets.setdefault(latent, torch.zeros_like(keep))
                    if position is None:
                        where[row, :n] = kept
                    else:
                        where[row, position] = True
                inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "use_cache": False}
                logits = model(**inputs).logits
                clean = [_next_token_log_probs(logits[row], ids, ids.numel()) for row, (ids, *_) in enumerate(batch)]
                del logits
                ablations = [Ablate(latent, positions=where) for latent, where in targets.items()]
                with attach(model, name, dictionary, keep=keep, interventions=ablations, record=False):
                    logits = model(**inputs).logits
                for row, (ids, *_) in enumerate(batch):
                    n = ids.numel()
                    effect = torch.full((n,), math.nan, dtype=torch.float64)
                    effect[: n - 1] = (_next_token_log_probs(logits[row], ids, n) - clean[row]).cpu()
                    effects.append(effect)
                del logits
    finally:
        model.train(model_training)
    return effects


def ablation_effect(
    lm: LanguageModel,
    module: str,
    dictionary: SparseDictionary,
    token_ids: Tensor,
    latent: int,
    position: int | None = None,
    *,
    batch_size: int = 16,
    skip_first: int = 1,
    drop_special: bool = True,
) -> Tensor:
    """Change of log p(next token) at every position when ``latent`` is ablated at ``position`` (None: wherever it
    fires) of ``token_ids`` [seq] or [batch, seq] (unpadded rows). Returns float64 [seq] or [batch, seq]: entry t is
    the effect on predicting token t + 1, the last entry NaN. See ``ablation_effects``."""
    if token_ids.dim() == 1:
        return ablation_effects(
            lm,
            module,
            dictionary,
            [(token_ids, latent, position)],
            batch_size=batch_size,
            skip_first=skip_first,
            drop_special=drop_special,
        )[0]
    if token_ids.dim() != 2:
        raise ValueError(f"token_ids must have shape [seq] or [batch, seq], got {list(token_ids.shape)}")
    rows = [(row, latent, position) for row in token_ids]
    effects = ablation_effects(
        lm, module, dictionary, rows, batch_size=batch_size, skip_first=skip_first, drop_special=drop_special
    )
    return torch.stack(effects)
