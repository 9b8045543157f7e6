"""`dictlab reproduce absorption` at reduced size: the bench with planted hierarchies, where the truth is known."""

from pathlib import Path

import pytest
import torch

from dictlab.diagnostics.hierarchy import tilted_pairs
from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.reproductions.absorption import AbsorptionBenchConfig, AbsorptionBenchResults, run_absorption_bench
from dictlab.reproductions.absorption.run import detection


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[AbsorptionBenchResults, Path]:
    out = tmp_path_factory.mktemp("absorption")
    return run_absorption_bench(AbsorptionBenchConfig.quick(seed=0), out, echo=lambda _: None), out


def test_gt_pairs_are_nested_and_trained_saes_absorb(bench: tuple[AbsorptionBenchResults, Path]) -> None:
    results, out = bench
    gt, saes = results.dictionaries[0], results.dictionaries[1:]
    planted = gt.detectors["nested"]["planted"]
    n_edges = results.config.data.n_parents * results.config.data.children_per_parent
    assert gt.n_planted_pairs == n_edges and gt.n_absorbed_pairs == 0
    assert (planted.precision, planted.recall) == (1.0, 1.0)
    for sae in saes:
        assert sae.n_absorbed_pairs >= sae.n_planted_pairs // 2 > 0
        # an absorbed pair has child points without the parent, so it cannot be an exactly nested pair
        assert sae.detectors["nested"]["absorbed"].both == 0
    pooled = [s.detectors["tilted"]["absorbed"] for s in saes]
    both, flagged, ref = (sum(getattr(d, f) for d in pooled) for f in ("both", "flagged", "reference"))
    assert both / flagged >= 0.5 and both / ref >= 0.3  # the label-free tilted pairs find absorption
    label = [s.detectors["label-based"]["absorbed"] for s in saes]
    assert sum(d.both for d in label) / sum(d.reference for d in label) >= 0.3
    text = (out / "results.md").read_text(encoding="utf-8")
    assert "nested vs absorbed" in text and (out / "report.html").is_file()


def test_tilted_pairs_need_tilt_and_a_silent_parent() -> None:
    W = torch.nn.functional.normalize(torch.tensor([[1.0, 0, 0], [0.6, 0.8, 0], [0, 0, 1.0], [0, 0.1, 1.0]]), dim=1)
    A = torch.tensor(
        [
            [1.0, 0, 0, 0],
            [1, 0, 0, 0],
            [0, 1, 0, 0],  # child 1 fires without parent 0 ...
            [1, 1, 0, 0],  # ... and once with it: absorption ratio 1/2
            [0, 0, 1, 1],  # 2 and 3 are tilted (cos 0.995) but always co-fire: not absorbed
            [0, 0, 1, 1],
        ]
    )
    pairs = tilted_pairs(SparseCodes.from_dense(A), W)
    assert [(p.parent, p.child) for p in pairs] == [(0, 1)]
    assert pairs[0].absorption_ratio == 0.5 and pairs[0].cosine == pytest.approx(0.6)
    assert tilted_pairs(SparseCodes.from_dense(A), W, min_cosine=0.7) == []


def test_detection_counts() -> None:
    d = detection({(0, 1), (2, 3)}, {(0, 1), (4, 5), (6, 7)})
    assert (d.both, d.precision, d.recall) == (1, 0.5, pytest.approx(1 / 3))
    assert detection(set(), {(0, 1)}).precision is None
