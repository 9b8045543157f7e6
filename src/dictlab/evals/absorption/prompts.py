"""In-context prompts for a word and its class, and the language model's activation at the word's token.

A prompt follows SAEBench's ``create_icl_prompt`` (``adamkarvonen/SAEBench`` 0.6.0,
``sae_bench/evals/absorption/prompting.py``): ``max_icl_examples`` other words of the vocabulary, each as
``template.format(word=example) + answer(example)``, joined by ``separator``, then ``template.format(word=word)``
without its answer; the separator is also prepended (SAEBench's ``prepend_separator_to_first_example``). With the
first-letter template and a leading-space word this reads::

    \\n dog has the first letter: D\\n tree has the first letter: T ... \\n cat has the first letter:

Where dictlab differs: SAEBench reads a fixed position (``prompt_token_pos = -6``, the word token when the word is
one token and the tokenizer appends nothing). dictlab finds the word's token from the tokenizer's offset mapping
(the one token whose characters overlap the word in the last line), so any template and tokenizer (WordPiece with
[SEP], BPE) works, and a prompt where the word is not exactly one token is refused rather than read at the wrong
place.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dictlab.lm.capture import ActivationCatcher
from dictlab.lm.loading import LanguageModel
from dictlab.lm.modules import resolve_modules
from dictlab.progress import progress_bar


class PromptError(ValueError):
    """A prompt that cannot be read: the word is not one token, or the tokenizer gives no offsets."""


@dataclass(frozen=True)
class WordPrompt:
    """One prompt and where its word sits in it (characters)."""

    word: str
    text: str
    word_start: int
    """Index of the word's first character in ``text`` (its leading space excluded)."""
    word_stop: int


def icl_prompt(
    word: str,
    examples: Sequence[str],
    template: str,
    answer: Callable[[str], str],
    rng: random.Random,
    max_icl_examples: int = 10,
    separator: str = "\n",
    leading_space: bool = True,
) -> WordPrompt:
    """The prompt for ``word`` with ``max_icl_examples`` examples drawn from ``examples`` (never ``word`` itself).

    ``template`` holds ``{word}``; with ``leading_space`` every word enters it as ``" " + word`` (the vocabulary
    is made of words that are one token with a leading space).
    """
    if "{word}" not in template:
        raise ValueError(f"prompt template {template!r} has no {{word}} placeholder")
    pool = [e for e in examples if e != word]
    chosen = rng.sample(pool, min(max_icl_examples, len(pool)))
    space = " " if leading_space else ""
    lines = [template.format(word=space + e) + answer(e) for e in chosen]
    head = separator + separator.join(lines) + separator if lines else separator
    last = template.format(word=space + word)
    start = len(head) + len(template[: template.index("{word}")].format()) + len(space)
    return WordPrompt(word=word, text=head + last, word_start=start, word_stop=start + len(word))


def word_token_positions(offsets: Tensor, attention_mask: Tensor, prompts: Sequence[WordPrompt]) -> Tensor:
    """Index of each prompt's word token in its padded encoding: [batch] long.

    Args:
        offsets: [batch, seq, 2] character spans from the tokenizer (``return_offsets_mapping``).
        attention_mask: [batch, seq].
        prompts: the batch's prompts.

    Raises :class:`PromptError` when a word overlaps zero or several tokens.
    """
    starts, stops = offsets[..., 0], offsets[..., 1]
    out = torch.empty(len(prompts), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        hit = (starts[i] < prompt.word_stop) & (stops[i] > prompt.word_start) & attention_mask[i].bool()
        found = hit.nonzero().flatten()
        if len(found) != 1:
            raise PromptError(
                f"word {prompt.word!r} spans {len(found)} tokens in its prompt, not exactly one; the vocabulary "
                "must hold single-token words (see single_token_words)"
            )
        out[i] = found[0]
    return out


def single_token_words(tokenizer: object, words: Sequence[str], leading_space: bool = True) -> list[str]:
    """The words that encode to exactly one token (with a leading space when ``leading_space``), in order."""
    space = " " if leading_space else ""
    encoded = tokenizer([space + w for w in words], add_special_tokens=False)["input_ids"]  # type: ignore[operator]
    return [w for w, ids in zip(words, encoded, strict=True) if len(ids) == 1]


def word_activations(
    lm: LanguageModel,
    module: str,
    prompts: Sequence[WordPrompt],
    batch_size: int = 32,
    progress: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Output of ``module`` at each prompt's word token, with dictlab's capture hooks.

    Returns (activations [n, width] float32, positions [n] — the token index read, counted from the prompt's
    first token, token ids [n] — the token read).
    """
    if not getattr(lm.tokenizer, "is_fast", False):
        raise PromptError(f"model {lm.name!r}: the tokenizer gives no offset mapping (a fast tokenizer is needed)")
    names = resolve_modules(lm.model, [module])
    if len(names) != 1:
        raise ValueError(f"module {module!r} names {len(names)} modules of {lm.name!r}; give exactly one")
    device = next(lm.model.parameters()).device
    catcher = ActivationCatcher(lm.model, names)
    rows, positions, token_ids = [], [], []
    try:
        with torch.inference_mode():
            starts = range(0, len(prompts), batch_size)
            for lo in progress_bar(starts, desc=f"word activations {names[0]}", unit=" batches", enabled=progress):
                batch = list(prompts[lo : lo + batch_size])
                encoded = lm.tokenizer(
                    [p.text for p in batch], padding=True, return_offsets_mapping=True, return_tensors="pt"
                )
                where = word_token_positions(encoded["offset_mapping"], encoded["attention_mask"], batch)
                hidden = catcher.run(
                    lm.model,
                    input_ids=encoded["input_ids"].to(device),
                    attention_mask=encoded["attention_mask"].to(device),
                )[names[0]]
                index = torch.arange(len(batch))
                rows.append(hidden[index, where.to(hidden.device)].float().cpu())
                first_real = encoded["attention_mask"].long().argmax(dim=1)  # left padding shifts the prompt
                positions.append(where - first_real)
                token_ids.append(encoded["input_ids"][index, where])
    finally:
        catcher.remove()
    if not rows:
        raise ValueError("no prompts to read")
    return torch.cat(rows), torch.cat(positions), torch.cat(token_ids)
