"""Helpers of the reliability tests: run the CLI in-process, snapshot folders, craft bad files."""

import hashlib
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from dictlab.cli.main import cli

SMALL_TRAIN = ["--chunk-rows", "256", "--batch-size", "256", "--buffer-rows", "1024", "--no-progress"]
"""Options that make ``dictlab train`` on the tiny store take about a second."""


def invoke(*args: str | Path) -> Result:
    """``dictlab ARGS`` in this process (exceptions the CLI does not handle are kept in ``result.exception``)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def snapshot(path: Path) -> dict[str, str] | None:
    """{relative path: sha256} of every file under ``path`` (None when it does not exist)."""
    if not path.exists():
        return None
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def error_line(result: Result) -> str:
    """The single ``Error: ...`` line of a failed command (asserts there is exactly one and no traceback)."""
    text = result.output
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, text
    return lines[0]


def edit_json(path: Path, change: Any) -> None:
    """Rewrite the JSON object in ``path`` through ``change(obj)`` (which edits it in place)."""
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj))
