"""Claim an output folder for one run: refuse folders another run wrote, lock, record the identity, clean up.

Rules (the same for every command that writes a folder):

* a missing or empty folder is created and gets ``run.json``;
* a folder whose ``run.json`` matches the run (same command, settings and input fingerprints) is reused: the
  command resumes or redoes its work there;
* anything else is refused before a byte is written, naming the first difference: another command's folder,
  other settings, other inputs, or files dictlab did not write. ``overwrite=True`` replaces a folder dictlab
  wrote (never one it did not: no ``run.json``, no deletion);
* the folder is locked for the whole run; stale temporaries of killed writers are removed;
* if the run fails in a folder it created, the folder is removed again, unless ``keep_on_failure`` says it holds
  progress worth resuming (a checkpoint, committed shards).
"""

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from pydantic import ValidationError

from dictlab.distributed import broadcast_object, world
from dictlab.files.atomic import atomic_write_text, remove_stale_temporaries
from dictlab.files.json_files import read_json_object
from dictlab.outputs.identity import RUN_FILE, RunIdentity
from dictlab.outputs.lock import LOCK_FILE, folder_lock
from dictlab.validation import validation_message

STAGING_DIR = ".staging"


class OutputError(ValueError):
    """An output folder cannot be used for this run; the message says why and how to proceed."""


def read_identity(folder: Path) -> RunIdentity:
    """The identity recorded in ``folder/run.json``."""
    raw = read_json_object(folder / RUN_FILE, OutputError, "not a dictlab output folder")
    try:
        return RunIdentity.model_validate(raw)
    except ValidationError as err:
        raise OutputError(
            f"{folder / RUN_FILE} is not a valid dictlab run identity: {validation_message(err)}"
        ) from err


def _contents(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name != LOCK_FILE] if folder.is_dir() else []


def check_output(out: Path, identity: RunIdentity, overwrite: bool = False) -> bool:
    """Whether ``out`` may receive this run (True: it holds earlier work to reuse or replace; False: new/empty).

    Raises OutputError otherwise; writes nothing.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is an existing file, not a folder")
    if not _contents(out):
        return False
    if not (out / RUN_FILE).is_file():
        raise OutputError(
            f"--out {out} already holds files that `dictlab {identity.command}` did not write (no {RUN_FILE}); "
            "choose a new or empty folder"
        )
    difference = read_identity(out).first_difference(identity)
    if difference is not None and not overwrite:
        raise OutputError(
            f"--out {out} holds another run: {difference}. Choose a new --out, or pass --overwrite to replace it"
        )
    return True


def _acquire(out: Path, identity: RunIdentity, overwrite: bool, stack: contextlib.ExitStack) -> bool:
    """Create and lock ``out`` (the lock joins ``stack``), replace it if ``overwrite`` applies, write run.json;
    returns whether earlier work of this run is there."""
    out.mkdir(parents=True, exist_ok=True)
    stack.enter_context(folder_lock(out))
    existed = check_output(out, identity, overwrite)  # again under the lock: another writer may have been first
    if existed and read_identity(out).first_difference(identity) is not None:  # overwrite was asked for
        for path in _contents(out):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        existed = False
    remove_stale_temporaries(out)
    shutil.rmtree(out / STAGING_DIR, ignore_errors=True)
    if not existed:
        atomic_write_text(out / RUN_FILE, identity.model_dump_json(indent=2) + "\n")
    return existed


@contextlib.contextmanager
def claim_output(
    out: Path,
    identity: RunIdentity,
    overwrite: bool = False,
    keep_on_failure: Callable[[Path], bool] | None = None,
) -> Iterator[Path]:
    """Check, create and lock ``out`` for the run ``identity``; yields ``out`` (see the module docstring).

    In a distributed run rank 0 claims the folder and every other rank waits for its verdict: all proceed, or all
    raise rank 0's error. Only rank 0 writes to ``out``.
    """
    out = Path(out)
    if not world().is_main:
        verdict = broadcast_object(None)
        if verdict is not None:
            raise OutputError(verdict)
        yield out
        return
    created = not out.exists()
    try:
        with contextlib.ExitStack() as stack:
            try:
                check_output(out, identity, overwrite)
                existed = _acquire(out, identity, overwrite, stack)
            except ValueError as err:
                broadcast_object(str(err))
                raise
            broadcast_object(None)
            try:
                yield out
            except BaseException:
                if not existed and not (keep_on_failure is not None and keep_on_failure(out)):
                    for path in _contents(out):
                        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
                raise
    finally:
        if created and out.is_dir() and not _contents(out):
            (out / LOCK_FILE).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out.rmdir()


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yield an empty staging folder inside the claimed ``out``; on success move its entries over ``out``'s (each
    replaced whole), on failure delete it, so ``out`` holds the old outputs or the complete new ones."""
    stage = out / STAGING_DIR
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        for entry in sorted(stage.iterdir()):
            target = out / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
