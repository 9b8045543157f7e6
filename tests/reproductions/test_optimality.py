"""`dictlab reproduce`: the hierarchy, wide-limit and dense-antipodal experiments at reduced size, and the CLI."""

import itertools
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dictlab.cli.main import cli
from dictlab.reproductions.dense_antipodal import DenseAntipodalConfig, DenseAntipodalResults, run_dense_antipodal
from dictlab.reproductions.hierarchy import HierarchyConfig, HierarchyResults, run_hierarchy
from dictlab.reproductions.registry import REPRODUCTIONS
from dictlab.reproductions.synthetic import sparse_data
from dictlab.reproductions.wide_limit import WideLimitConfig, WideLimitResults, run_wide_limit

TOL = 1e-5


def _outputs_exist(out: Path, figures: list[str]) -> dict:
    for name in figures:
        path = out / "figures" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "Theory vs measurement" in (out / "results.md").read_text(encoding="utf-8")
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory: pytest.TempPathFactory) -> tuple[HierarchyResults, Path]:
    out = tmp_path_factory.mktemp("hierarchy")
    return run_hierarchy(HierarchyConfig.quick(seed=0), out, echo=lambda _: None), out


def test_gt_hierarchy_is_flagged_and_not_stationary(hierarchy: tuple[HierarchyResults, Path]) -> None:
    results, _ = hierarchy
    for gt in results.gt:
        assert not gt.pairwise_passes and gt.n_nested_pairs >= 1
        pair = gt.pairs[0]
        assert pair.verdict is not None and pair.verdict.nested and not pair.verdict.passes
        assert pair.verdict.max_k_where_j_silent == 0 or pair.verdict.max_j_where_k_silent == 0
        assert pair.distinct_gt_pair
        assert gt.violations["C2"] > 0.1 and not gt.conditions_hold


def test_converged_dictionary_passes_with_tilt_and_partial_absorption(
    hierarchy: tuple[HierarchyResults, Path],
) -> None:
    results, _ = hierarchy
    by_label = {a.label: a for a in results.solver}
    for label in ("solver, GT init, no bias", "solver, GT init, bias"):
        a = by_label[label]
        assert a.solver is not None and a.solver.converged
        assert a.conditions_hold and a.pairwise_passes and a.n_nested_pairs == 0
        assert max(a.violations[n] for n in ("C1 active", "C1 inactive", "C2")) <= TOL
        tilt = a.pairs[0]
        assert 0.4 <= tilt.child_atom_cos_parent <= 0.65  # §10: 0.52
        assert 0.75 <= tilt.child_atom_cos_child <= 0.92  # §10: 0.85
        assert tilt.parent_atom_cos_parent > 0.99
        assert tilt.parent_on_child_points is not None and 0.6 < tilt.parent_on_child_points < 0.97  # §10: 82 %
        assert not tilt.distinct_gt_pair
        assert tilt.e3_lhs == pytest.approx(tilt.e3_rhs, rel=1e-6)  # E3 / E4 for (parent, child)
    biased = by_label["solver, GT init, bias"]
    assert biased.violations["C3"] <= TOL and biased.violations["E4 Σp = 1"] <= TOL
    assert all(abs(p - 1) < 1e-6 for p in biased.p_sums)
    assert all(0.5 < p < 0.95 for p in by_label["solver, GT init, no bias"].p_sums)  # §10: 0.69–0.81


def test_no_converged_dictionary_or_sae_keeps_both_gt_atoms(hierarchy: tuple[HierarchyResults, Path]) -> None:
    results, out = hierarchy
    converged = [a for a in results.solver if a.solver and a.solver.converged]
    assert converged and all(a.pairwise_passes for a in converged)
    assert not any(p.distinct_gt_pair for a in converged for p in a.pairs)
    assert results.sae and not any(p.distinct_gt_pair for s in results.sae for p in s.assessment.pairs)
    assert all(s.width == 3 and s.assessment.n_atoms == 3 for s in results.sae)
    families = results.families
    assert families is not None
    assert families.gt.n_nested_pairs == 6 and len(families.gt.pairs) == 6
    for a in families.solver:
        assert a.conditions_hold and a.pairwise_passes
        assert all(0.4 <= p.child_atom_cos_parent <= 0.65 and not p.distinct_gt_pair for p in a.pairs)
    data = _outputs_exist(out, ["pairwise_parent_child.png", "cosines_to_gt.png"])
    assert HierarchyResults.model_validate(data).claims == results.claims
    assert all(c.holds is not False for c in results.claims), [c for c in results.claims if c.holds is False]


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> tuple[WideLimitResults, Path]:
    out = tmp_path_factory.mktemp("wide")
    return run_wide_limit(WideLimitConfig.quick(seed=0), out, echo=lambda _: None), out


def test_wide_limit_bound_and_shrinking_gap(wide: tuple[WideLimitResults, Path]) -> None:
    results, out = wide
    (sweep,) = results.sweeps
    # P_∞ in closed form (no bias), recomputed from the same data.
    X = sparse_data(sweep.sweep, torch.Generator().manual_seed(results.config.seed))
    lam = results.config.lam
    norms = X.norm(dim=1)
    closed = float(torch.where(norms > lam, lam * norms - lam**2 / 2, norms**2 / 2).sum())
    assert sweep.p_infinity == pytest.approx(closed, rel=1e-12)
    assert sweep.n_rays == int((norms > lam).sum())
    assert sweep.bound_holds and all(r.loss >= closed for r in sweep.runs)
    gaps = [b.gap for b in sweep.best]
    assert sweep.gap_decreasing and all(b < a for a, b in itertools.pairwise(gaps))
    assert gaps[0] > 1.0 and gaps[-1] < 0.2
    last = sweep.best[-1]
    assert last.alignment > 0.99 and last.max_residual_over_lambda < sweep.best[0].max_residual_over_lambda
    assert last.mean_l0 < sweep.best[0].mean_l0 and last.live_atoms <= sweep.n_rays
    assert all(r.converged for r in sweep.runs)
    _outputs_exist(out, ["width_sweep.png"])


@pytest.fixture(scope="module")
def dense(tmp_path_factory: pytest.TempPathFactory) -> tuple[DenseAntipodalResults, Path]:
    out = tmp_path_factory.mktemp("dense")
    return run_dense_antipodal(DenseAntipodalConfig.quick(seed=0), out, echo=lambda _: None), out


def test_dense_direction_splits_at_the_median(dense: tuple[DenseAntipodalResults, Path]) -> None:
    results, out = dense
    normal = results.normal
    pair = normal.antipodal_init
    assert pair.converged and pair.cosine < -0.99 and pair.plus_cos_u > 0.99
    assert abs(pair.split - normal.median) < 0.05
    assert 0.4 < pair.active_plus < 0.5 and 0.4 < pair.active_minus < 0.5
    assert abs(pair.active_plus - pair.predicted_active_plus) < 0.02
    assert normal.l1_pair_exact < normal.l1_one_atom_exact / 2
    assert normal.random_inits and all(
        r.cosine < -0.99 and abs(r.split - normal.median) < 0.05 for r in normal.random_inits
    )
    (row,) = results.skewed
    assert row.pair.cosine < -0.99
    assert abs(row.pair.split - row.median) < 0.05 < abs(row.pair.split - row.mean)
    assert row.pair.loss < row.one_atom_loss and row.one_atom_active > 0.5
    _outputs_exist(out, ["split_histograms.png"])
    assert all(c.holds is not False for c in results.claims)


def test_cli_reproduce_writes_results(tmp_path: Path) -> None:
    assert set(REPRODUCTIONS) >= {"hierarchy", "wide-limit", "dense-antipodal"}
    out = tmp_path / "wide"
    result = CliRunner().invoke(cli, ["reproduce", "wide-limit", "--quick", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wide-limit finished" in result.output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert data["config"]["seed"] == 3 and (out / "figures" / "width_sweep.png").exists()

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(cli, ["reproduce", "dense-antipodal", "--quick", "--out", str(blocker)])
    assert result.exit_code == 1 and "not a folder" in result.output
    result = CliRunner().invoke(cli, ["reproduce", "table9"])
    assert result.exit_code == 2 and "table9" in result.output
