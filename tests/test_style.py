"""The code base stays ruff-clean (lint and format) and pyright-clean (basic mode, over src/); part of the test
command so CI enforces it."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEV_EXTRA = "part of the dev extra: python -m pip install -e '.[dev]' -c constraints.txt"


@pytest.mark.parametrize(
    "args", [["check", "src", "tests", "benchmarks"], ["format", "--check", "src", "tests", "benchmarks"]]
)
def test_ruff(args: list[str]) -> None:
    ruff = shutil.which("ruff")
    assert ruff is not None, f"ruff is {DEV_EXTRA}"
    proc = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pyright_basic_over_src() -> None:
    pyright = shutil.which("pyright")
    assert pyright is not None, f"pyright is {DEV_EXTRA}"
    proc = subprocess.run([pyright], cwd=ROOT, capture_output=True, text=True, timeout=900)  # [tool.pyright]
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors" in proc.stdout, proc.stdout
