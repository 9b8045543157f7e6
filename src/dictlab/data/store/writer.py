"""Append shards to an activation store so that a capture killed at any moment resumes without lost or
duplicated rows.

Commit protocol: the shard files of a commit (one per module plus the text index) are written atomically under
their final names, then the manifest that lists them and advances the cursor replaces the old one atomically.
A kill before the manifest is replaced leaves unlisted files, which :meth:`StoreWriter.open` deletes; the rows they
held are captured again from the unchanged cursor.

The two halves can run in different processes: :func:`write_shard_files` writes one shard's files and returns what
the manifest needs (:class:`WrittenShard`); :meth:`StoreWriter.record` lists it, in shard order, in the one process
that owns the manifest.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dictlab.data.store.manifest import (
    LABELS_FILE,
    MANIFEST_FILE,
    TEXT_INDEX_DIR,
    TOKEN_INDEX_DIR,
    TOKENS_DIR,
    ModuleEntry,
    RunningStats,
    ShardEntry,
    StoreDtype,
    StoreError,
    StoreManifest,
    module_folder,
    read_manifest,
    shard_name,
    write_manifest,
)
from dictlab.data.store.shards import write_shard
from dictlab.data.store.tokens import ShardTokens
from dictlab.outputs.identity import RUN_FILE
from dictlab.outputs.lock import LOCK_FILE


@dataclass(frozen=True)
class WrittenShard:
    """A shard whose files are on disk, not yet in the manifest: its file name (None when it holds no rows), its
    row count and the statistics of every module's block."""

    file: str | None
    rows: int
    stats: dict[str, RunningStats]


def write_shard_files(
    root: Path,
    manifest: StoreManifest,
    file: str,
    rows: dict[str, np.ndarray],
    text_index: np.ndarray,
    tokens: ShardTokens | None = None,
) -> WrittenShard:
    """Write shard ``file`` of the store at ``root`` (laid out as ``manifest`` says): ``rows[module]`` [n, width]
    for every module, the [n] text index and, in a store that keeps them, the token files. Nothing is written for
    n = 0, or when any block is malformed."""
    n = int(text_index.shape[0])
    if (tokens is not None) != manifest.tokens:
        need = "a store with token files needs them for every shard" if manifest.tokens else "it has no token files"
        raise StoreError(f"{root}: shard {file}: {need}")
    if tokens is not None:
        try:
            tokens.check(n)
        except ValueError as err:
            raise StoreError(f"{root}: token files of shard {file}: {err}") from err
    for entry in manifest.modules:
        block = rows.get(entry.name)
        if block is None or block.shape != (n, entry.width):
            shape = None if block is None else list(block.shape)
            raise StoreError(f"commit for module {entry.name!r}: expected [{n}, {entry.width}] rows, got {shape}")
        if not np.isfinite(block).all():
            raise StoreError(f"module {entry.name!r} produced NaN or Inf activations; nothing was written")
    if not n:
        return WrittenShard(None, 0, {})
    write_shard(root / TEXT_INDEX_DIR / file, text_index.astype(np.int64))
    if tokens is not None:
        write_shard(root / TOKENS_DIR / file, tokens.tokens.astype(np.int32))
        write_shard(root / TOKEN_INDEX_DIR / file, tokens.index.astype(np.int64))
    stats = {}
    for entry in manifest.modules:
        block = rows[entry.name].astype(manifest.dtype, copy=False)
        write_shard(root / entry.folder / file, block)
        stats[entry.name] = RunningStats.of(block)
    return WrittenShard(file, n, stats)


class StoreWriter:
    """Creates a store or reopens one for resuming; :meth:`commit` appends one shard per module."""

    def __init__(self, root: Path, manifest: StoreManifest) -> None:
        self.root = root
        self.manifest = manifest

    @classmethod
    def open(
        cls,
        root: str | Path,
        model: str,
        modules: dict[str, int],
        dtype: StoreDtype,
        settings: dict[str, Any],
        labels: np.ndarray,
        label_names: list[str],
        tokens: bool = False,
    ) -> "StoreWriter":
        """Create the store at ``root``, or reopen it if its manifest was made with the same model, modules and
        settings (anything else is an error: a store never mixes captures). ``modules`` maps name → width;
        ``tokens``: every shard gets token files (see :mod:`dictlab.data.store.tokens`)."""
        root = Path(root)
        if (root / MANIFEST_FILE).exists():
            manifest = read_manifest(root)
            found = {m.name: m.width for m in manifest.modules}
            if manifest.tokens != tokens and manifest.rows:
                raise StoreError(
                    f"{root} was captured {'with' if manifest.tokens else 'without'} token ids; it cannot be resumed "
                    f"{'with' if tokens else 'without'} them. Pass --overwrite to capture it again"
                )
            manifest.tokens = tokens
            if manifest.model != model or found != modules or manifest.dtype != dtype or manifest.settings != settings:
                raise StoreError(
                    f"{root} holds a different capture (model {manifest.model!r}, modules {found}, dtype "
                    f"{manifest.dtype}, settings {manifest.settings}); choose a new --out to capture "
                    f"model {model!r}, modules {modules}, dtype {dtype}, settings {settings}"
                )
            writer = cls(root, manifest)
            writer._remove_uncommitted()
            return writer
        if root.exists() and any(p.name not in (RUN_FILE, LOCK_FILE) for p in root.iterdir()):
            raise StoreError(f"{root} exists and is not an activation store; choose an empty or new folder")
        entries = [ModuleEntry(name=name, folder=module_folder(name), width=width) for name, width in modules.items()]
        manifest = StoreManifest(
            model=model, dtype=dtype, modules=entries, label_names=label_names, settings=settings, tokens=tokens
        )
        root.mkdir(parents=True, exist_ok=True)
        write_shard(root / LABELS_FILE, labels.astype(np.int64))
        write_manifest(root, manifest)
        return cls(root, manifest)

    def _folders(self) -> list[Path]:
        index = [self.root / name for name in (TEXT_INDEX_DIR, TOKENS_DIR, TOKEN_INDEX_DIR)]
        return index + [self.root / m.folder for m in self.manifest.modules]

    def _remove_uncommitted(self) -> None:
        committed = {s.file for s in self.manifest.shards}
        for folder in self._folders():
            if folder.is_symlink():
                raise StoreError(f"{folder} is a symbolic link; a store's shard folders must be real folders in it")
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                if path.name not in committed:
                    path.unlink()

    def commit(
        self,
        rows: dict[str, np.ndarray],
        text_index: np.ndarray,
        batches_done: int,
        texts_done: int,
        tokens_seen: int,
        tokens: ShardTokens | None = None,
    ) -> None:
        """Append one shard: ``rows[module]`` [n, width] for every module, the [n] text index and the token files
        (in a store that keeps them), then advance the cursor to ``batches_done`` / ``texts_done`` /
        ``tokens_seen`` (totals, not increments)."""
        written = write_shard_files(self.root, self.manifest, self.next_file, rows, text_index, tokens)
        self.record(written, batches_done, texts_done, tokens_seen)

    @property
    def next_file(self) -> str:
        """File name of the next shard."""
        return shard_name(len(self.manifest.shards))

    def record(self, written: WrittenShard, batches_done: int, texts_done: int, tokens_seen: int) -> None:
        """List ``written`` (whose files are complete on disk) as the next shard and advance the cursor to the
        totals ``batches_done`` / ``texts_done`` / ``tokens_seen``; StoreError if it is not the next shard."""
        manifest = self.manifest
        if written.rows:
            if written.file != self.next_file or set(written.stats) != {m.name for m in manifest.modules}:
                raise StoreError(
                    f"{self.root}: shard {written.file} of modules {sorted(written.stats)} cannot follow "
                    f"{len(manifest.shards)} committed shards of modules {[m.name for m in manifest.modules]}; "
                    f"the next shard is {self.next_file}"
                )
            for entry in manifest.modules:
                entry.stats.merge(written.stats[entry.name])
            manifest.shards.append(ShardEntry(file=self.next_file, rows=written.rows))
        manifest.batches_done = batches_done
        manifest.texts_done = texts_done
        manifest.tokens_seen = tokens_seen
        write_manifest(self.root, manifest)

    def finish(self) -> None:
        """Mark the capture complete."""
        self.manifest.complete = True
        write_manifest(self.root, self.manifest)
