"""``torchrun -m dictlab capture``: two processes write the store one process writes, byte for byte (every file but
the lock, which holds the writer's pid); an interrupted one-process capture resumes at two processes, which are
SIGKILLed, and one process finishes it into the uninterrupted store; a failure on one process stops both with one
error line each, and the store it leaves resumes. Every process runs one intra-op thread (torchrun's default, and
this session's), since CPU float results depend on the thread count."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dictlab.cli.main import cli
from dictlab.data.store import read_manifest
from dictlab.data.store import writer as store_writer
from dictlab.outputs.lock import LOCK_FILE

KILL_HELPER = Path(__file__).parents[1] / "kill_helper.py"
MODULES = ("model.layers.0", "model.layers.1")
FAIL_ON_RANK_1 = """
import os, sys
from dictlab.data.store import writer
if os.environ["RANK"] == "1":
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device (injected on rank 1)")
    writer.write_shard = full_disk
from dictlab.cli.main import main
sys.argv = ["dictlab", *sys.argv[1:]]
main()
"""


def capture_args(lm: Path, corpus: Path, out: Path, *extra: str) -> list[str]:
    """A capture of ~1,500 rows of both blocks in ~10 shards of 150 rows (batches of 4 texts)."""
    return ["capture", "--model", str(lm), "--module", "layer:0,layer:1", "--corpus", str(corpus), "--out", str(out),
            "--max-texts", "120", "--batch-size", "4", "--shard-rows", "150", "--no-progress", *extra]  # fmt: skip


def in_process(args: list[str]) -> str:
    """``dictlab ARGS`` in this (one-thread) process; its output."""
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result.output


def torchrun(*args: str, script: list[str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc_per_node=2`` of dictlab (or ``script``), one thread per process; the whole
    process group is killed if it outlives ``timeout``."""
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    target = script if script is not None else ["-m", "dictlab"]
    proc = subprocess.Popen(
        [*launch, *target, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def store_files(folder: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every file in ``folder``; the lock's content (a pid) is left out."""
    return {
        str(p.relative_to(folder)): b"" if p.name == LOCK_FILE else p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_same_store(a: Path, b: Path) -> None:
    files_a, files_b = store_files(a), store_files(b)
    assert sorted(files_a) == sorted(files_b)
    different = [name for name in files_a if files_a[name] != files_b[name]]
    assert not different, different


@pytest.fixture(scope="module")
def reference(tiny_lm_dir: Path, corpus_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one-process store of the test command."""
    out = tmp_path_factory.mktemp("one-process") / "store"
    in_process(capture_args(tiny_lm_dir, corpus_file, out))
    manifest = read_manifest(out)
    assert manifest.complete and len(manifest.shards) >= 8 and manifest.rows > 1000
    return out


def test_two_processes_write_the_one_process_store(
    reference: Path, tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "two"
    proc = torchrun(*capture_args(tiny_lm_dir, corpus_file, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("rows from 120 texts") == 1  # process 0 reports, once
    assert_same_store(reference, out)


def test_a_different_seed_gives_other_bytes(
    reference: Path, tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    """Negative control: the byte comparison does fail on another capture of the same texts."""
    out = tmp_path / "seed1"
    in_process(capture_args(tiny_lm_dir, corpus_file, out, "--seed", "1"))
    files, expected = store_files(out), store_files(reference)
    assert files["labels.npy"] == expected["labels.npy"]  # same corpus
    assert files["text_index/shard-000000.npy"] != expected["text_index/shard-000000.npy"]
    assert files["manifest.json"] != expected["manifest.json"]
    with pytest.raises(AssertionError):
        assert_same_store(reference, out)


def test_resumes_from_one_to_two_processes_and_after_a_kill_at_two_from_two_to_one(
    tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process is interrupted, two resume it and are SIGKILLed, one finishes; with --max-tokens, so where the
    capture ends is planned too."""
    reference, out = tmp_path / "reference", tmp_path / "resumed"
    in_process(capture_args(tiny_lm_dir, corpus_file, reference, "--max-tokens", "1200"))
    expected = read_manifest(reference)
    assert expected.complete and 1200 <= expected.tokens_seen < 1300 and expected.texts_done < 120
    calls = {"n": 0}
    write_manifest = store_writer.write_manifest

    def stop_at_the_fourth(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # as a kill would: shard 2's files are on disk, its manifest is not
        write_manifest(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store_writer, "write_manifest", stop_at_the_fourth)
    args = capture_args(tiny_lm_dir, corpus_file, out, "--max-tokens", "1200")
    assert CliRunner().invoke(cli, args).exit_code != 0
    monkeypatch.undo()
    assert len(read_manifest(out).shards) == 2 and (out / MODULES[0] / "shard-000002.npy").is_file()
    killed = torchrun("manifest", "3", *args, script=[str(KILL_HELPER)])  # process 0 dies recording shard 4
    assert killed.returncode != 0, killed.stderr[-3000:]
    manifest = read_manifest(out)
    assert not manifest.complete and [s.file for s in manifest.shards] == [f"shard-00000{i}.npy" for i in range(4)]
    for module in MODULES:  # shards 4 (process 0) and 5 (process 1) were written, never committed
        assert (out / module / "shard-000004.npy").is_file() and (out / module / "shard-000005.npy").is_file()
    assert "resuming after batch" in in_process(args)
    assert_same_store(reference, out)


def test_a_failure_on_one_process_stops_every_process(
    reference: Path, tiny_lm_dir: Path, corpus_file: Path, tmp_path: Path
) -> None:
    script = tmp_path / "fail_on_rank_1.py"
    script.write_text(FAIL_ON_RANK_1)
    out = tmp_path / "failed"
    args = capture_args(tiny_lm_dir, corpus_file, out)
    started = time.monotonic()
    proc = torchrun(*args, script=[str(script)], timeout=90)
    assert proc.returncode != 0 and time.monotonic() - started < 90
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert sorted(errors) == [
        "Error: [Errno 28] No space left on device (injected on rank 1)",
        "Error: process 1 of 2 failed: [Errno 28] No space left on device (injected on rank 1)",
    ], proc.stderr[-3000:]
    assert not [line for line in proc.stderr.splitlines() if "dictlab" in line and line.strip().startswith("File")]
    # Process 0 committed its own shard 0 before the failure was known; the store resumes to the same bytes.
    assert [s.file for s in read_manifest(out).shards] == ["shard-000000.npy"]
    in_process(args)
    assert_same_store(reference, out)
