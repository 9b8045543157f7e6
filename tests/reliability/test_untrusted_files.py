"""Files dictlab did not write are data: crafted manifests cannot make a command read or delete outside the
store, tensor files never unpickle objects, and generated HTML never passes markup through."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import run_dictlab
from reliability_helpers import edit_json, error_line, invoke, snapshot

from .conftest import Folders


def _capture_args(f: Folders, out: Path) -> list[str | Path]:
    """The command that made the session store (so a copy of it is resumable by this command)."""
    return ["capture", "--model", f.lm, "--module", "layer:1", "--corpus", f.corpus, "--out", out,
            "--batch-size", "4", "--shard-rows", "300", "--no-progress"]  # fmt: skip


def _outside(tmp: Path) -> Path:
    victim = tmp / "victim"
    victim.mkdir()
    (victim / "thesis.tex").write_text("years of work")
    (victim / "shard-000000.npy").write_bytes(b"not a shard")
    return victim


def test_the_capture_command_resumes_a_copy_of_its_store(folders: Folders, tmp_path: Path) -> None:
    store = folders.copy("store", tmp_path)
    before = snapshot(store)
    result = invoke(*_capture_args(folders, store))
    assert result.exit_code == 0, result.output
    assert "already complete" in result.output and snapshot(store) == before


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_manifest_cannot_point_a_resumed_capture_outside_the_store(
    folders: Folders, tmp_path: Path, where: str
) -> None:
    victim = _outside(tmp_path)
    store = folders.copy("store", tmp_path)
    target = os.path.relpath(victim, store) if where == "relative" else str(victim)
    edit_json(store / "manifest.json", lambda m: m.update(complete=False) or m["modules"][0].update(folder=target))
    before, store_before = snapshot(victim), snapshot(store)
    result = invoke(*_capture_args(folders, store))
    assert result.exit_code == 1 and "not a plain name" in error_line(result)
    assert snapshot(victim) == before and snapshot(store) == store_before


def test_a_symlinked_shard_folder_is_never_cleaned(folders: Folders, tmp_path: Path) -> None:
    victim = _outside(tmp_path)
    store = folders.copy("store", tmp_path)
    (store / "model.layers.1").rename(tmp_path / "moved")
    (store / "model.layers.1").symlink_to(victim, target_is_directory=True)
    edit_json(store / "manifest.json", lambda m: m.update(complete=False))
    before = snapshot(victim)
    result = invoke(*_capture_args(folders, store))
    assert result.exit_code == 1 and "is a symbolic link" in error_line(result)
    assert snapshot(victim) == before


def test_shard_names_with_dot_dot_are_never_read(folders: Folders, tmp_path: Path) -> None:
    store = folders.copy("store", tmp_path)
    first = json.loads((store / "manifest.json").read_text())["shards"][0]["file"]
    (tmp_path / "secret.npy").write_bytes((store / "model.layers.1" / first).read_bytes())
    edit_json(store / "manifest.json", lambda m: m["shards"][0].update(file="../../secret.npy"))
    result = invoke("train", "--store", store, "--out", tmp_path / "out", "--no-progress")
    assert result.exit_code == 1 and "not a plain name" in error_line(result)


def test_results_markdown_is_shown_as_text_in_the_index(folders: Folders, tmp_path: Path) -> None:
    bench = folders.copy("bench", tmp_path)
    (bench / "results.md").write_text(
        '<script>alert("x")</script> <img src=x onerror=alert(1)> [a](javascript:alert(1))\n'
    )
    result = invoke("report", bench, "--out", tmp_path / "site")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "site" / "index.html").read_text()
    assert "<script>alert" not in page and "<img src=x" not in page and "javascript:" not in page
    assert "&lt;script&gt;" in page


def test_identical_runs_write_byte_identical_weights_in_separate_processes(tmp_path: Path) -> None:
    """safetensors writes its metadata in hash order, which changes between processes; dictlab sorts it."""
    args = ["bench", "--preset", "smoke", "--methods", "topk", "--no-sweep", "--steps", "20", "--no-progress"]
    for name in ("a", "b"):
        assert run_dictlab(*args, "--out", str(tmp_path / name)).returncode == 0
    for weights in sorted((tmp_path / "a").rglob("*.safetensors")):
        twin = tmp_path / "b" / weights.relative_to(tmp_path / "a")
        assert weights.read_bytes() == twin.read_bytes(), weights


def test_files_get_the_umask_mode_not_mkstemps(tmp_path: Path) -> None:
    code = (
        "import os; os.umask(0o002); from dictlab.files.atomic import atomic_write_text; "
        f"atomic_write_text({str(tmp_path / 'f.txt')!r}, 'x')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o664
