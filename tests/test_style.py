"""The code base stays ruff-clean (lint and format); part of the test command so CI enforces it."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "args", [["check", "src", "tests", "benchmarks"], ["format", "--check", "src", "tests", "benchmarks"]]
)
def test_ruff(args: list[str]) -> None:
    ruff = shutil.which("ruff")
    assert ruff is not None, "ruff is part of the dev extra: python -m pip install -e '.[dev]' -c constraints.txt"
    proc = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
