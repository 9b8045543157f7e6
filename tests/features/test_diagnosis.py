"""The per-latent view of the diagnostics (features.diagnosis) on planted structure with a known answer."""

import dataclasses
import json

import pytest
import torch

from diagnostics_fixtures import LAM, hierarchy_data
from dictlab.diagnostics import SparseCodes, diagnose_codes, make_dictionary, nonnegative_lasso
from dictlab.features.diagnosis import diagnosis_headline, latent_diagnoses

PARENT, CHILD, OTHER, DEAD, PLUS, MINUS, PARENT2, CHILD2 = range(8)


def planted() -> tuple[torch.Tensor, torch.Tensor]:
    """The hierarchy fixture (parent, child, other in dims 0–7) plus, in six more dims: a dense signed direction
    (atoms ±e₈), a second parent e₉ whose child e₁₀ leaks weakly outside it, and an unused direction e₁₁."""
    X8, gt = hierarchy_data()
    n = len(X8)
    g = torch.Generator().manual_seed(1)
    extra = 0.01 * torch.randn(n, 6, generator=g, dtype=torch.float64)
    extra[:, 0] += torch.randn(n, generator=g, dtype=torch.float64) + 0.5
    parent2 = torch.rand(n, generator=g, dtype=torch.float64) < 0.4
    child2 = parent2 & (torch.rand(n, generator=g, dtype=torch.float64) < 0.375)
    leak = ~parent2 & (torch.rand(n, generator=g, dtype=torch.float64) < 0.05)
    extra[:, 1] += parent2 * (0.5 + torch.rand(n, generator=g, dtype=torch.float64))
    extra[:, 2] += child2 * (0.5 + torch.rand(n, generator=g, dtype=torch.float64)) + 0.1 * leak
    X = torch.cat([X8, extra], dim=1)
    E = torch.eye(14, dtype=torch.float64)
    atoms = torch.cat([torch.cat([gt, torch.zeros(3, 6, dtype=torch.float64)], dim=1), E[[11, 8]], -E[[8]], E[[9, 10]]])
    return X, atoms


@pytest.fixture(scope="module")
def diagnosed():
    X, atoms = planted()
    d = make_dictionary(atoms, torch.zeros(14, dtype=torch.float64))
    dense = nonnegative_lasso(X, d, LAM).codes
    assert (dense[:, DEAD] == 0).all()
    return diagnose_codes(X, d, SparseCodes.from_dense(dense), LAM)


def test_hierarchy_roles_partners_and_absorption(diagnosed):
    records = latent_diagnoses(diagnosed)
    assert len(records) == 8
    pairs = {(p.parent, p.child): p for p in diagnosed.report.hierarchy.pairs}
    child, parent = records[CHILD], records[PARENT]
    assert (child.nested_role, child.nested_partner) == ("child", PARENT)
    assert (parent.nested_role, parent.nested_partner) == ("parent", CHILD)
    assert "nested-child" in child.flags and "nested-parent" in parent.flags
    assert child.absorption_ratio == pairs[PARENT, CHILD].absorption_ratio == 0.0
    # The leaky child fires mostly inside its parent and fails the hull test: partly nested, absorption > 0.
    child2, parent2 = records[CHILD2], records[PARENT2]
    ratio = pairs[PARENT2, CHILD2].absorption_ratio
    assert 0.1 < ratio < 0.25
    assert (child2.nested_role, child2.nested_partner, child2.absorption_ratio) == ("child", PARENT2, ratio)
    assert (parent2.nested_role, parent2.nested_partner, parent2.absorption_ratio) == ("parent", CHILD2, ratio)
    assert "partly-nested-child" in child2.flags and "nested-child" not in child2.flags
    assert [h["partner"] for h in child2.details["hierarchy"]] == [PARENT2]
    # The dense atom co-fires with most of the others by chance (P(it | other) > ½) but passes the hull test.
    assert any(p.parent == PLUS and p.p_parent_given_child > 0.5 for p in pairs.values())
    for unrelated in (OTHER, PLUS, MINUS):
        assert records[unrelated].nested_partner is None and records[unrelated].nested_role is None
        assert not any("nested" in flag for flag in records[unrelated].flags)


def test_nested_pairs_come_from_the_pairwise_walk_beyond_the_report(diagnosed):
    """With the report's hierarchy list empty, the nested pair is still found; the partly nested one is not."""
    hierarchy = diagnosed.report.hierarchy.model_copy(update={"pairs": []})
    report = diagnosed.report.model_copy(update={"hierarchy": hierarchy})
    records = latent_diagnoses(dataclasses.replace(diagnosed, report=report))
    assert (records[CHILD].nested_role, records[CHILD].nested_partner) == ("child", PARENT)
    assert (records[PARENT].nested_role, records[PARENT].nested_partner) == ("parent", CHILD)
    assert records[CHILD].details["hierarchy"][0]["bound_slack"] is None
    assert records[CHILD2].nested_partner is None


def test_a_failing_pair_that_rarely_cofires_is_no_hierarchy(diagnosed):
    """The antipodal halves never co-fire (absorption ratio 1); marked as failing the hull test they stay apart."""
    failing = torch.cat([diagnosed.pairwise.failing_pairs, torch.tensor([[PLUS, MINUS]])])
    pairwise = dataclasses.replace(diagnosed.pairwise, failing_pairs=failing)
    records = latent_diagnoses(dataclasses.replace(diagnosed, pairwise=pairwise))
    assert records[PLUS].nested_partner is None and records[MINUS].nested_partner is None
    assert "violates-hull" in records[PLUS].flags and "violates-hull" not in latent_diagnoses(diagnosed)[PLUS].flags


def test_dead_dense_antipodal(diagnosed):
    records = latent_diagnoses(diagnosed)
    dead = records[DEAD]
    assert dead.flags[0] == "dead" and dead.split_pressure is None and dead.residual_share is None
    assert all("dead" not in r.flags for i, r in enumerate(records) if i != DEAD)
    plus, minus = records[PLUS], records[MINUS]
    assert plus.dense and "dense" in plus.flags and not minus.dense
    assert [i for i, r in enumerate(records) if r.dense] == [a.atom for a in diagnosed.report.dense.dense_atoms]
    assert (plus.antipodal_partner, minus.antipodal_partner) == (MINUS, PLUS)
    assert "antipodal" in plus.flags and "antipodal" in minus.flags
    assert all(r.antipodal_partner is None for i, r in enumerate(records) if i not in (PLUS, MINUS))
    (split,) = plus.details["antipodal"]
    assert split["median_projection"] == -minus.details["antipodal"][0]["median_projection"] > 0


def test_per_atom_numbers_match_the_report_and_arrays(diagnosed):
    records = latent_diagnoses(diagnosed)
    sp = dict(zip(diagnosed.arrays["split_atoms"].tolist(), diagnosed.arrays["split_pressure"].tolist(), strict=True))
    assert all(records[k].split_pressure == v for k, v in sp.items()) and DEAD not in sp
    # residual_share from scratch: the residual energy on the atom's rows along its own atom.
    R, A, W = diagnosed.conditions.residuals, diagnosed.codes.to_dense(), diagnosed.dictionary.atoms
    rows = A[:, CHILD2] > 0
    expected = float((R[rows] @ W[CHILD2]).square().sum() / R[rows].square().sum())
    assert records[CHILD2].residual_share == pytest.approx(expected, rel=1e-9)
    assert 0 < expected < 1


def test_condition_values_per_atom_agree_with_the_checks():
    """On perturbed codes (C1 fails too), every per-atom condition value peaks where the check's worst offender
    is, at the same value, and the violates-<check> flags follow the check's tolerance."""
    X, atoms = planted()
    d = make_dictionary(atoms, torch.zeros(14, dtype=torch.float64))
    A = nonnegative_lasso(X, d, LAM).codes
    A = A * (1 + 0.2 * torch.rand(A.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    diagnostics = diagnose_codes(X, d, SparseCodes.from_dense(A), LAM)
    records = latent_diagnoses(diagnostics)
    flag = {"C1 active": "C1", "C2": "C2", "E1": "E1", "bias identity": "bias-identity", "E4 Σp = 1": "E4-sum"}
    for check in diagnostics.report.conditions:
        if check.name not in flag:
            continue
        values = [r.details["conditions"].get(check.name) for r in records]
        worst = check.worst[0]
        assert values[worst.where[-1]] == pytest.approx(worst.value, rel=1e-9, abs=1e-12)
        assert max(v for v in values if v is not None) == pytest.approx(check.distribution.max, rel=1e-9)
        for v, r in zip(values, records, strict=True):
            assert (f"violates-{flag[check.name]}" in r.flags) == (v is not None and v > check.tolerance)
    e1 = [r.details["conditions"]["E1"] for r in records if r.flags[0] != "dead"]
    c2 = [r.details["conditions"]["C2"] for r in records if r.flags[0] != "dead"]
    assert any(a > b * 1.01 for a, b in zip(e1, c2, strict=True))  # E1 has a radial part here


def test_headline_is_json_ready(diagnosed):
    headline = diagnosis_headline(diagnosed)
    assert json.loads(json.dumps(headline)) == headline
    assert headline["lambda"] == LAM and headline["codes"] == "given" and headline["n_points"] == 3000
    assert (headline["n_atoms"], headline["n_live_atoms"]) == (8, 7)
    assert (headline["n_nested_pairs"], headline["n_dense"], headline["n_antipodal_pairs"]) == (1, 1, 1)
    assert headline["conditions_hold"] is False and "C3" in headline["failing_checks"]
    assert headline["notes"] == []
