"""Run the real `dictlab` command line in a subprocess (shared by the CLI tests)."""

import subprocess
import sys


def run_dictlab(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """`dictlab ARGS...` through the installed entry point's `main`, capturing text output."""
    return subprocess.run(
        [sys.executable, "-c", "from dictlab.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
