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
    assert both / flagged >= 0.7 and both / ref >= 0.6  # the label-free tilted pairs find absorption (0.83 / 0.83)
    label = [s.detectors["label-based"]["absorbed"] for s in saes]
    both, flagged, ref = (sum(getattr(d, f) for d in label) for f in ("both", "flagged", "reference"))
    assert both / flagged >= 0.6 and both / ref >= 0.4  # and so does the label-based metric (0.75 / 0.5)
    text = (out / "results.md").read_text(encoding="utf-8")
    assert "nested vs absorbed" in text and (out / "report.html").is_file()


def test_tilted_pairs_need_tilt_co_firing_and_a_silent_parent() -> None:
    s = (1 - 0.6**2) ** 0.5
    W = torch.zeros(6, 6)
    W[0, 0], W[1, 0], W[1, 1] = 1.0, 0.6, 0.8  # 1 tilts towards 0 (cos 0.6)
    W[2, 2], W[3, 2], W[3, 3] = 1.0, 0.995, (1 - 0.995**2) ** 0.5  # 3 tilts towards 2 (cos 0.995)
    W[4, 4], W[5, 4], W[5, 5] = 1.0, 0.6, s  # 5 tilts towards 4 (cos 0.6)
    A = torch.zeros(200, 6)
    A[0:40, 0] = 1  # parent 0: P(0) = 0.2
    A[20:50, 1] = 1  # child 1 fires with 0 on 20 of its 30 points: 1/3 without, z = 14/√4.8 ≈ 6.4
    A[100:120, 2] = A[100:120, 3] = 1  # 2 and 3 always co-fire: not absorbed
    A[0::2, 4] = 1  # 4 on every other point: P(4) = 0.5 ...
    A[150:190, 5] = 1  # ... and 5 with it on half its points, as chance has it (z = 0)
    codes = SparseCodes.from_dense(A)
    pairs = tilted_pairs(codes, W)
    assert [(p.parent, p.child) for p in pairs] == [(0, 1)]
    assert pairs[0].absorption_ratio == pytest.approx(1 / 3) and pairs[0].cosine == pytest.approx(0.6)
    assert pairs[0].cooccurrence_z == pytest.approx(14 / 4.8**0.5)
    assert tilted_pairs(codes, W, min_cosine=0.7) == []
    chance = tilted_pairs(codes, W, min_cooccurrence_z=-float("inf"))
    assert {(p.parent, p.child) for p in chance} == {(0, 1), (4, 5)}


def test_detection_counts() -> None:
    d = detection({(0, 1), (2, 3)}, {(0, 1), (4, 5), (6, 7)})
    assert (d.both, d.precision, d.recall) == (1, 0.5, pytest.approx(1 / 3))
    assert detection(set(), {(0, 1)}).precision is None
