"""Capture activations of a transformers model into an activation store (``dictlab capture``).

Forward hooks on every requested module collect their outputs in one forward pass; the pass stops right after the
last hooked module fires, so later blocks and the LM head never run. Texts are shuffled (seeded), then sorted by
token length inside windows of ``bucket_batches`` batches, which removes most padding while keeping the store's
order mixed. Padding, special tokens and the first ``skip_first`` positions of every text are dropped (see
:mod:`dictlab.lm.positions`). The batch sequence is a pure function of the corpus and the settings, and the store's
cursor counts committed batches, so a killed capture re-run with the same command resumes exactly where its last
committed shard ended.
"""

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dictlab.data.store import StoreError, StoreManifest, StoreWriter, read_manifest
from dictlab.data.store.manifest import MANIFEST_FILE
from dictlab.devices import check_device
from dictlab.lm.capture_config import TORCH_DTYPES, CaptureConfig
from dictlab.lm.loading import LanguageModel, load_language_model
from dictlab.lm.modules import output_tensor, resolve_modules
from dictlab.lm.positions import kept_positions
from dictlab.outputs import RunIdentity, check_output, claim_output, file_fingerprint
from dictlab.progress import progress_bar


class _StopForward(Exception):
    """Raised by the last hook: everything needed has been captured."""


def batch_plan(lengths: list[int], batch_size: int, bucket_batches: int, seed: int) -> list[list[int]]:
    """Text indices of every forward batch: shuffle, then sort by length within windows of ``bucket_batches``."""
    order = np.random.default_rng(seed).permutation(len(lengths))
    window = batch_size * bucket_batches
    batches = []
    for start in range(0, len(order), window):
        bucket = sorted(order[start : start + window].tolist(), key=lambda i: lengths[i])
        batches.extend(bucket[b : b + batch_size] for b in range(0, len(bucket), batch_size))
    return batches


class ActivationCatcher:
    """Forward hooks that keep the output hidden states of ``names`` and stop the pass after the last one."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        self.names = names
        self.outputs: dict[str, Tensor] = {}
        self._handles = [model.get_submodule(n).register_forward_hook(self._hook(n)) for n in names]

    def _hook(self, name: str) -> Callable[..., None]:
        def hook(_module: torch.nn.Module, _inputs: object, output: object) -> None:
            self.outputs.setdefault(name, output_tensor(output))
            if len(self.outputs) == len(self.names):
                raise _StopForward

        return hook

    def run(self, model: torch.nn.Module, **inputs: Tensor) -> dict[str, Tensor]:
        """Forward ``inputs`` and return {module: hidden states [batch, seq, width]}."""
        self.outputs = {}
        with contextlib.suppress(_StopForward):
            model(**inputs)
        missing = [n for n in self.names if n not in self.outputs]
        if missing:
            raise RuntimeError(f"modules {missing} did not run in the forward pass")
        return self.outputs

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def module_widths(lm: LanguageModel, names: list[str], device: str) -> dict[str, int]:
    """Output width of every module, from one forward pass on a short text."""
    batch = lm.tokenizer(["width probe"], return_tensors="pt")
    catcher = ActivationCatcher(lm.model, names)
    try:
        with torch.inference_mode():
            outputs = catcher.run(
                lm.model, input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            )
    finally:
        catcher.remove()
    return {name: int(outputs[name].shape[-1]) for name in names}


def _encoded_batches(
    lm: LanguageModel, texts: list[str], plan: list[list[int]], config: CaptureConfig, first: int
) -> Iterator[tuple[int, list[int], dict[str, Tensor]]]:
    """(batch number, text ids, tokenizer output) of every batch from ``first`` on."""
    for number in range(first, len(plan)):
        ids = plan[number]
        encoded = lm.tokenizer(
            [texts[i] for i in ids],
            padding=True,
            truncation=True,
            max_length=config.max_length,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        yield number, ids, encoded


def batch_rows(
    outputs: dict[str, Tensor], keep: Tensor, text_ids: list[int], pool: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Store rows of one batch: ({module: [rows, width] float32}, text index [rows]).

    ``outputs[module]`` is [batch, seq, width], ``keep`` the [batch, seq] positions to keep. ``pool="none"`` keeps
    one row per kept position; ``"mean"`` one row per text with at least one kept position (their mean).
    """
    ids = torch.as_tensor(text_ids)
    device = next(iter(outputs.values())).device
    if pool == "mean":
        has = keep.any(dim=1)
        weights = keep.to(device, torch.float32)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1)
        rows = {n: torch.einsum("bs,bsd->bd", weights, h.float())[has.to(device)] for n, h in outputs.items()}
        index = ids[has]
    else:
        rows = {n: h[keep.to(device)].float() for n, h in outputs.items()}
        index = ids.unsqueeze(1).expand_as(keep)[keep]
    return {n: r.cpu().numpy() for n, r in rows.items()}, index.numpy()


def capture_identity(config: CaptureConfig) -> RunIdentity:
    """What makes a store: the model, modules and every content setting, and the corpus file's fingerprint."""
    corpus = Path(config.corpus)
    inputs = {"corpus": file_fingerprint(corpus)} if corpus.is_file() else {}
    settings = config.settings() | {"model": config.model, "module": list(config.module)}
    return RunIdentity(command="capture", config=settings, inputs=inputs, paths={"corpus": config.corpus})


def _has_shards(out: Path) -> bool:
    return (out / MANIFEST_FILE).is_file() and read_manifest(out).rows > 0


def capture(config: CaptureConfig, echo: Callable[[str], None] = print) -> StoreManifest:
    """Run (or resume) a capture; returns the final manifest.

    Inputs are loaded and checked before ``config.out`` is claimed (see :mod:`dictlab.outputs.claim`).
    """
    from dictlab.data.corpora import load_corpus

    check_device(config.device)
    check_output(config.out, capture_identity(config), config.overwrite)
    corpus = load_corpus(config.corpus)
    if config.max_per_class:
        corpus = corpus.balanced(config.max_per_class, config.seed)
    texts = corpus.texts[: config.max_texts] if config.max_texts else corpus.texts
    lm = load_language_model(config.model, TORCH_DTYPES[config.model_dtype], config.device)
    names = resolve_modules(lm.model, list(config.module))
    widths = module_widths(lm, names, config.device)
    with claim_output(config.out, capture_identity(config), config.overwrite, _has_shards):
        return _capture(config, lm, names, widths, texts, corpus.labels, corpus.label_names, echo)


def _capture(
    config: CaptureConfig,
    lm: LanguageModel,
    names: list[str],
    widths: dict[str, int],
    texts: list[str],
    labels: np.ndarray,
    label_names: list[str],
    echo: Callable[[str], None],
) -> StoreManifest:
    writer = StoreWriter.open(
        config.out,
        lm.name,
        widths,
        config.dtype,
        config.settings(),
        np.asarray(labels[: len(texts)]),
        label_names,
    )
    manifest = writer.manifest
    if manifest.complete or (config.max_tokens is not None and manifest.tokens_seen >= config.max_tokens):
        writer.finish()
        echo(f"{config.out}: capture already complete ({manifest.rows:,} rows)")
        return manifest
    lengths = [len(ids) for ids in lm.tokenizer(texts, truncation=True, max_length=config.max_length)["input_ids"]]
    plan = batch_plan(lengths, config.batch_size, config.bucket_batches, config.seed)
    if manifest.batches_done:
        echo(f"{config.out}: resuming after batch {manifest.batches_done} ({manifest.rows:,} rows committed)")
    buffers: dict[str, list[np.ndarray]] = {n: [] for n in names}
    index_buffer: list[np.ndarray] = []
    buffered = 0
    tokens, texts_done = manifest.tokens_seen, manifest.texts_done
    catcher = ActivationCatcher(lm.model, names)
    bar = progress_bar(
        total=config.max_tokens,
        initial=tokens,
        unit=" tok",
        unit_scale=True,
        enabled=config.progress,
        desc=f"capture {','.join(names)}",
    )

    def commit(batches_done: int) -> None:
        nonlocal buffered
        rows = {n: np.concatenate(b) if b else np.empty((0, widths[n]), np.float32) for n, b in buffers.items()}
        index = np.concatenate(index_buffer) if index_buffer else np.empty(0, np.int64)
        writer.commit(rows, index, batches_done, texts_done, tokens)
        for b in buffers.values():
            b.clear()
        index_buffer.clear()
        buffered = 0

    try:
        with torch.inference_mode(), bar:
            for number, ids, encoded in _encoded_batches(lm, texts, plan, config, manifest.batches_done):
                keep = kept_positions(
                    encoded["attention_mask"], encoded["special_tokens_mask"], config.skip_first, config.drop_special
                )
                outputs = catcher.run(
                    lm.model,
                    input_ids=encoded["input_ids"].to(config.device),
                    attention_mask=encoded["attention_mask"].to(config.device),
                )
                rows, index = batch_rows(outputs, keep, ids, config.pool)
                for name in names:
                    buffers[name].append(rows[name])
                index_buffer.append(index)
                buffered += len(index)
                tokens += int(keep.sum())
                texts_done += len(ids)
                bar.update(int(keep.sum()))
                last = config.max_tokens is not None and tokens >= config.max_tokens
                if buffered >= config.shard_rows or last or number == len(plan) - 1:
                    commit(number + 1)
                if last:
                    break
    finally:
        catcher.remove()
    if writer.manifest.rows == 0:
        raise StoreError(
            f"{config.out}: the capture kept no rows (every position of {len(texts):,} texts was padding, special or "
            f"among the first --skip-first {config.skip_first}); nothing was written"
        )
    writer.finish()
    m = writer.manifest
    echo(f"{config.out}: {m.rows:,} rows from {m.texts_done:,} texts, modules {', '.join(names)}")
    return m
