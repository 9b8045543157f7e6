"""Real folders every reliability test starts from: a trained run, its SAELens export and a small bench."""

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from reliability_helpers import SMALL_TRAIN, invoke


@dataclass(frozen=True)
class Folders:
    """Read-only outputs of real commands; :meth:`copy` gives a test its own writable copy."""

    store: Path
    run: Path
    saelens: Path
    bench: Path
    lm: Path
    corpus: Path

    def copy(self, name: str, into: Path) -> Path:
        target = into / f"copy-{name}"
        shutil.copytree(getattr(self, name), target)
        return target


@pytest.fixture(scope="session")
def folders(
    tiny_store: Path, tiny_lm_dir: Path, corpus_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Folders:
    root = tmp_path_factory.mktemp("reliability")
    run, saelens, bench = root / "run", root / "saelens", root / "bench"
    for args in (
        ["train", "--store", tiny_store, "--out", run, "--steps", "30", "--k", "4", *SMALL_TRAIN],
        ["export-saelens", run, saelens],
        [
            "bench",
            "--preset",
            "smoke",
            "--methods",
            "topk",
            "--no-sweep",
            "--steps",
            "20",
            "--out",
            bench,
            "--no-progress",
        ],
    ):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
    return Folders(tiny_store, run, saelens, bench, tiny_lm_dir, corpus_file)
