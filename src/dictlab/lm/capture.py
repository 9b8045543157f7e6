"""Capture activations of a transformers model into an activation store (``dictlab capture``), in one process or
over the processes of ``torchrun``.

Forward hooks on every requested module collect their outputs in one forward pass; the pass stops right after the
last hooked module fires, so later blocks and the LM head never run. The texts of every forward batch and the
batches of every shard are planned from tokenization alone, before any forward pass (see
:mod:`dictlab.lm.capture_plan`). Padding, special tokens and the first ``skip_first`` positions of every text are
dropped (see :mod:`dictlab.lm.positions`). Every shard also keeps the token ids of its texts and where each row's
token sits among them (:mod:`dictlab.data.store.tokens`), so contexts can be shown from the store alone.

Under ``torchrun`` with W processes, shard j is captured by process j mod W, in rounds of W shards: each process
writes its shard's files, then process 0 alone lists the round's shards in the manifest, in shard order. A failure
on any process is sent to all of them at the end of the round, so every process stops with an error. The store's
cursor counts committed batches, so a killed capture re-run with the same command, at any number of processes,
resumes exactly where its last committed shard ended, and the store holds the same bytes as a one-process capture.
"""

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import Tensor

from dictlab.data.corpora.labelled import LabelledTexts
from dictlab.data.store import StoreError, StoreManifest, StoreWriter, read_manifest
from dictlab.data.store.manifest import MANIFEST_FILE
from dictlab.data.store.tokens import ShardTokens, batch_tokens
from dictlab.data.store.writer import WrittenShard, write_shard_files
from dictlab.devices import check_device
from dictlab.distributed import any_rank, broadcast_object, world
from dictlab.lm.capture_config import TORCH_DTYPES, CaptureConfig
from dictlab.lm.capture_plan import CapturePlan, PlannedShard, plan_capture
from dictlab.lm.loading import LanguageModel, load_language_model
from dictlab.lm.modules import output_tensor, resolve_modules
from dictlab.lm.positions import kept_positions
from dictlab.outputs import RunIdentity, check_output, claim_output, file_fingerprint
from dictlab.progress import Progress, progress_bar

T = TypeVar("T")


class _StopForward(Exception):
    """Raised by the last hook: everything needed has been captured."""


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


def module_widths(lm: LanguageModel, names: list[str], device: str | torch.device) -> dict[str, int]:
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


class PeerFailed(ValueError):
    """Another process of a distributed capture failed; the message names it and its error."""


def _describe(error: Exception | None) -> str | None:
    """One line for ``error`` (None for None), as it travels to the other processes."""
    if error is None:
        return None
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, ValueError | OSError) else f"{type(error).__name__}: {text}"


def _attempt(step: Callable[[], T]) -> tuple[T | None, Exception | None]:
    """``(step(), None)``, or ``(None, the exception it raised)``."""
    try:
        return step(), None
    except Exception as err:
        return None, err


def _gather(value: Any) -> list[Any]:
    """[``value`` of process 0, of process 1, ...] on every process (``[value]`` in one process)."""
    here = world()
    return [broadcast_object(value if here.rank == rank else None, rank) for rank in range(here.size)]


def _raise_first(error: Exception | None, messages: dict[int, str | None]) -> None:
    """Raise if a process failed: this process's own ``error``, else PeerFailed naming the first in ``messages``
    ({rank: error line or None})."""
    if error is not None:
        raise error
    for rank, message in messages.items():
        if message is not None:
            raise PeerFailed(f"process {rank} of {world().size} failed: {message}")


def _on_every_process(step: Callable[[], T]) -> T:
    """``step()`` on every process; if it raises on any of them, every process raises (none waits for the rest)."""
    value, error = _attempt(step)
    _raise_first(error, dict(enumerate(_gather(_describe(error)))))
    return cast(T, value)


def _on_main(step: Callable[[], T]) -> T:
    """``step()`` on process 0 only; its result (picklable), or its error, on every process."""
    value, error = _attempt(step) if world().is_main else (None, None)
    value, message = broadcast_object((value, _describe(error)))
    _raise_first(error, {0: message})
    return cast(T, value)


@dataclass(frozen=True)
class _Inputs:
    """Everything a capture needs before its output folder is claimed; the same plan on every process."""

    lm: LanguageModel
    device: torch.device
    names: list[str]
    widths: dict[str, int]
    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    plan: CapturePlan


def capture_corpus(corpus: str, max_per_class: int | None, max_texts: int | None, seed: int) -> LabelledTexts:
    """The texts a capture reads, in the order a store's ``text_index`` counts them: ``corpus`` (a name or a file),
    balanced to ``max_per_class`` texts per class with ``seed`` when given, then its first ``max_texts``."""
    from dictlab.data.corpora import load_corpus

    texts = load_corpus(corpus)
    if max_per_class:
        texts = texts.balanced(max_per_class, seed)
    return texts.subset(range(min(max_texts, len(texts)))) if max_texts else texts


def _prepare(config: CaptureConfig) -> _Inputs:
    """Check the device and ``--out``, load the corpus and the model, plan the batches and shards."""
    device = check_device(config.device)
    check_output(config.out, capture_identity(config), config.overwrite)
    corpus = capture_corpus(config.corpus, config.max_per_class, config.max_texts, config.seed)
    texts = corpus.texts
    lm = load_language_model(config.model, TORCH_DTYPES[config.model_dtype], device)
    names = resolve_modules(lm.model, list(config.module))
    widths = module_widths(lm, names, device)
    plan = plan_capture(lm.tokenizer, texts, config)
    if plan.rows == 0:
        raise StoreError(
            f"{config.out}: the capture would keep no rows (every position of {len(texts):,} texts is padding, "
            f"special or among the first --skip-first {config.skip_first}); nothing was written"
        )
    labels = np.asarray(corpus.labels[: len(texts)])
    return _Inputs(lm, device, names, widths, texts, labels, corpus.label_names, plan)


def _check_same_plan(plan: CapturePlan) -> None:
    """ValueError on every process unless all planned the same batches and shards."""
    digest = plan.digest()
    if any_rank(broadcast_object(digest) != digest):
        raise ValueError(
            "the processes planned different captures (other texts, tokenizer or settings): every process must "
            "read the same corpus and model"
        )


def capture(config: CaptureConfig, echo: Callable[[str], None] = print) -> StoreManifest:
    """Run (or resume) a capture, in one process or on every process of a ``torchrun`` group; returns the final
    manifest. Inputs are loaded and checked before ``config.out`` is claimed (see :mod:`dictlab.outputs.claim`)."""
    say = echo if world().is_main else _silent
    inputs = _on_every_process(lambda: _prepare(config))
    _check_same_plan(inputs.plan)
    with claim_output(config.out, capture_identity(config), config.overwrite, _has_shards):
        return _capture(config, inputs, say)


def _silent(_message: str) -> None:
    pass


@dataclass
class _Run:
    """What a process holds while it captures its shards; only process 0 has the manifest's ``writer``."""

    config: CaptureConfig
    inputs: _Inputs
    manifest: StoreManifest
    """The store's layout (on process 0, the writer's own manifest)."""
    catcher: ActivationCatcher
    bar: Progress[Any]
    writer: StoreWriter | None

    def main_writer(self) -> StoreWriter:
        if self.writer is None:
            raise RuntimeError(f"process {world().rank} holds no store writer; only process 0 writes the manifest")
        return self.writer


def _open_store(config: CaptureConfig, inputs: _Inputs) -> tuple[StoreWriter, int]:
    """Create or reopen the store (deleting uncommitted files); the writer and the first shard left to capture."""
    writer = StoreWriter.open(
        config.out,
        inputs.lm.name,
        inputs.widths,
        config.dtype,
        config.settings(),
        inputs.labels,
        inputs.label_names,
        tokens=True,
    )
    if writer.manifest.complete:
        return writer, len(inputs.plan.shards)
    return writer, inputs.plan.first_pending(writer.manifest, config.out)


def _capture(config: CaptureConfig, inputs: _Inputs, echo: Callable[[str], None]) -> StoreManifest:
    opened: list[StoreWriter] = []

    def open_on_main() -> tuple[str, int]:
        writer, first = _open_store(config, inputs)
        opened.append(writer)
        return writer.manifest.model_dump_json(), first

    layout, first = _on_main(open_on_main)  # the other processes write nothing before process 0 has cleaned up
    writer = opened[0] if opened else None
    manifest = writer.manifest if writer is not None else StoreManifest.model_validate_json(layout)
    if manifest.complete:
        echo(f"{config.out}: capture already complete ({manifest.rows:,} rows)")
        return manifest
    if manifest.batches_done:
        echo(f"{config.out}: resuming after batch {manifest.batches_done} ({manifest.rows:,} rows committed)")
    catcher = ActivationCatcher(inputs.lm.model, inputs.names)
    bar = progress_bar(
        total=inputs.plan.tokens,
        initial=manifest.tokens_seen,
        unit=" tok",
        unit_scale=True,
        enabled=config.progress and world().is_main,
        desc=f"capture {','.join(inputs.names)}",
    )
    run = _Run(config, inputs, manifest, catcher, bar, writer)
    try:
        with torch.inference_mode(), bar:
            size = world().size
            for start in range(first - first % size, len(inputs.plan.shards), size):
                _capture_round(run, start, first)
    finally:
        catcher.remove()
    final = StoreManifest.model_validate_json(_on_main(lambda: _finish(run)))
    echo(f"{config.out}: {final.rows:,} rows from {final.texts_done:,} texts, modules {', '.join(inputs.names)}")
    return final


def _finish(run: _Run) -> str:
    writer = run.main_writer()
    writer.finish()
    return writer.manifest.model_dump_json()


def _capture_round(run: _Run, start: int, first: int) -> None:
    """Shards ``start`` to ``start + W - 1`` (those from ``first`` on): each process captures its own, then process
    0 commits them in order, up to the first that failed; every process raises if any failed."""
    here = world()
    shards = run.inputs.plan.shards
    mine = start + here.rank
    shard = shards[mine] if first <= mine < len(shards) else None
    written, error = _attempt(lambda: None if shard is None else _capture_shard(run, shard))
    results: list[tuple[WrittenShard | None, str | None]] = _gather((written, _describe(error)))
    _on_main(lambda: _commit_round(run, start, first, results))
    _raise_first(error, {rank: message for rank, (_, message) in enumerate(results)})


def _commit_round(run: _Run, start: int, first: int, results: list[tuple[WrittenShard | None, str | None]]) -> None:
    """List the round's written shards in the manifest, in shard order, up to the first failed one."""
    writer = run.main_writer()
    shards = run.inputs.plan.shards
    for rank, (written, message) in enumerate(results):
        number = start + rank
        if not first <= number < len(shards):
            continue
        if message is not None or written is None:
            return  # this shard and the ones after it are captured again on resume
        shard = shards[number]
        writer.record(written, shard.stop, shard.texts_done, shard.tokens_seen)
        if rank != world().rank:
            run.bar.update(shard.tokens)  # process 0 counted its own shard batch by batch


def _capture_shard(run: _Run, shard: PlannedShard) -> WrittenShard:
    """Forward the batches of ``shard`` and write its files; StoreError if they keep other rows than planned."""
    inputs, config = run.inputs, run.config
    blocks: dict[str, list[np.ndarray]] = {name: [] for name in inputs.names}
    index: list[np.ndarray] = []
    token_files: list[ShardTokens] = []
    tokens = 0
    for number in range(shard.start, shard.stop):
        ids = inputs.plan.batches[number]
        encoded = inputs.lm.tokenizer(
            [inputs.texts[i] for i in ids],
            padding=True,
            truncation=True,
            max_length=config.max_length,
            return_special_tokens_mask=True,
            return_tensors="pt",
        )
        keep = kept_positions(
            encoded["attention_mask"], encoded["special_tokens_mask"], config.skip_first, config.drop_special
        )
        outputs = run.catcher.run(
            inputs.lm.model,
            input_ids=encoded["input_ids"].to(inputs.device),
            attention_mask=encoded["attention_mask"].to(inputs.device),
        )
        rows, text_ids = batch_rows(outputs, keep, ids, config.pool)
        for name in inputs.names:
            blocks[name].append(rows[name])
        index.append(text_ids)
        token_files.append(batch_tokens(encoded["input_ids"], encoded["attention_mask"], keep, config.pool))
        tokens += int(keep.sum())
        run.bar.update(int(keep.sum()))
    text_index = np.concatenate(index)
    if (len(text_index), tokens) != (shard.rows, shard.tokens):
        raise StoreError(
            f"batches {shard.start}-{shard.stop - 1} kept {len(text_index):,} rows from {tokens:,} tokens, but their "
            f"texts tokenized one by one gave {shard.rows:,} rows from {shard.tokens:,}: this tokenizer encodes "
            "padded batches differently, so the shard plan cannot be computed ahead"
        )
    rows = {name: np.concatenate(parts) for name, parts in blocks.items()}
    shard_tokens = ShardTokens.concat(token_files)
    return write_shard_files(config.out, run.manifest, shard.file or "", rows, text_index, shard_tokens)
