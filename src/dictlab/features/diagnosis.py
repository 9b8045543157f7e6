"""The per-latent view of ``dictlab diagnose``: one :class:`LatentDiagnosis` per atom, and the headline numbers.

Every number is read from the diagnostics' report and arrays, or derived from them in O(nnz + N·D + K·D); it is
about the diagnosed points (the first rows the diagnosis ran on), with the codes the diagnosis used. A value the
diagnosis does not give for an atom is None.

Flags (short kebab-case names):

- ``dead``: never active on the diagnosed points; its other fields stay None/False (``details`` keeps the count
  and E4 Σp = 1, the one per-atom check defined for a dead atom).
- ``nested-child`` / ``nested-parent``: in a pair with nested supports (the child never fires without the parent).
  All such pairs, from the pairwise hull test's exact walk (not only the report's 50 hierarchy pairs).
- ``partly-nested-child`` / ``partly-nested-parent``: in one of the report's hierarchy candidates that is not nested
  but fires mostly inside the parent (P(parent | child) ≥ ½) and fails the 1-D hull test.
- ``dense``: active on more than half the points.
- ``antipodal``: its atom has cosine below −0.95 with another live atom's.
- ``split-pressure``: SP_k/(λ‖α_k‖₁) > 1, the scale of the spare-atom test ‖r‖ > λ.
- ``violates-hull``: in a pair failing the 1-D pairwise hull test.
- ``violates-C1``, ``violates-C2``, ``violates-E1``, ``violates-bias-identity``, ``violates-E4-sum``: the atom's
  value of that check exceeds the check's tolerance.

C1 off the support (per point, on a subsample beyond ``max_dense_points``) and the pair identities E2–E4 are not
attributed to atoms.
"""

import math
from typing import Any

import torch
from torch import Tensor

from dictlab.diagnostics.diagnose import Diagnostics
from dictlab.diagnostics.summary import Check
from dictlab.features.report import LatentDiagnosis

MOSTLY_NESTED = 0.5
"""A hierarchy candidate that is not nested counts when P(parent | child) is at least this."""
SPLIT_PRESSURE_FLAG = 1.0
"""``split-pressure`` above this SP_k/(λ‖α_k‖₁)."""
MAX_LISTED = 20
"""Partners listed per latent in ``details``."""

ATOM_CHECKS = {"C1 active": "C1", "C2": "C2", "E1": "E1", "bias identity": "bias-identity", "E4 Σp = 1": "E4-sum"}
"""Checks with a value per atom: report name → flag suffix."""


def latent_diagnoses(diagnostics: Diagnostics) -> list[LatentDiagnosis]:
    """One record per atom of the diagnosed dictionary (index = latent)."""
    codes = diagnostics.codes
    K = codes.n_atoms
    counts = codes.counts.tolist()
    density = codes.density.double().tolist()
    conditions = _atom_conditions(diagnostics)
    hierarchy = _hierarchy(diagnostics)
    antipodal = _antipodal(diagnostics)
    split = _per_atom(diagnostics.arrays.get("split_pressure"), diagnostics.arrays.get("split_atoms"), K)
    share, mean_norm, above = _residual_on_support(diagnostics)
    failing = diagnostics.pairwise.failing_pairs.reshape(-1, 2)
    n_failing = torch.bincount(failing.flatten(), minlength=K).tolist() if len(failing) else [0] * K
    out: list[LatentDiagnosis] = []
    for k in range(K):
        flags: list[str] = []
        details: dict[str, Any] = {"count": counts[k], "density": density[k]}
        violations: dict[str, float] = {}
        for name, (values, tolerance) in conditions.items():
            value = values[k]
            if value is not None:
                violations[name] = value
                if value > tolerance:
                    flags.append(f"violates-{ATOM_CHECKS[name]}")
        if violations:
            details["conditions"] = violations
        if counts[k] == 0:
            out.append(LatentDiagnosis(flags=["dead", *flags], details=details))
            continue
        record = LatentDiagnosis(dense=density[k] > 0.5, split_pressure=split[k], residual_share=share[k])
        if record.dense:
            flags.append("dense")
        relations = hierarchy.get(k, [])
        if relations:
            best = relations[0]
            record.nested_partner, record.nested_role = best["partner"], best["role"]
            record.absorption_ratio = best["absorption_ratio"]
            for r in relations:
                flag = f"{'nested' if r['nested'] else 'partly-nested'}-{r['role']}"
                if flag not in flags:
                    flags.append(flag)
            details["hierarchy"] = relations[:MAX_LISTED]
            details["n_hierarchy_pairs"] = len(relations)
        partners = antipodal.get(k, [])
        if partners:
            record.antipodal_partner = partners[0]["partner"]
            flags.append("antipodal")
            details["antipodal"] = partners[:MAX_LISTED]
        if record.split_pressure is not None and record.split_pressure > SPLIT_PRESSURE_FLAG:
            flags.append("split-pressure")
        if n_failing[k]:
            flags.append("violates-hull")
            details["failing_pairs"] = n_failing[k]
        if mean_norm[k] is not None:
            details["residual_norm_over_lambda"] = mean_norm[k]
            details["share_above_lambda"] = above[k]
        record.flags = _ordered(flags)
        record.details = details
        out.append(record)
    return out


def diagnosis_headline(diagnostics: Diagnostics) -> dict[str, Any]:
    """Headline numbers of the diagnosis, JSON-ready."""
    report = diagnostics.report
    problem = report.problem
    return {
        "lambda": problem.lam,
        "lambda_source": problem.lam_source,
        "effective_lambda": problem.effective_lam,
        "codes": problem.codes,
        "bias": problem.bias,
        "n_points": problem.n_points,
        "n_atoms": problem.n_atoms,
        "n_live_atoms": problem.n_live_atoms,
        "mean_l0": problem.mean_l0,
        "conditions_hold": report.conditions_hold,
        "failing_checks": [c.name for c in report.conditions if not c.holds],
        "n_failing_pairs": report.pairwise.n_failing_pairs,
        "n_nested_pairs": report.pairwise.n_nested_pairs,
        "n_tilted_pairs": report.hierarchy.n_tilted,
        "n_dense": report.dense.n_dense,
        "n_antipodal_pairs": report.dense.n_antipodal_pairs,
        "fraction_above_lambda": report.residuals.fraction_above_lambda,
        "notes": list(report.notes),
    }


_FLAG_ORDER = ["dead", "nested-child", "nested-parent", "partly-nested-child", "partly-nested-parent", "dense"]
_FLAG_ORDER += ["antipodal", "split-pressure", "violates-hull"]


def _ordered(flags: list[str]) -> list[str]:
    """Structural flags first, in a fixed order, then the condition violations."""
    rank = {flag: i for i, flag in enumerate(_FLAG_ORDER)}
    return sorted(flags, key=lambda f: (rank.get(f, len(rank)), f))


def _per_atom(values: Tensor | None, atoms: Tensor | None, K: int) -> list[float | None]:
    """Values given for some atoms [M] at ids [M] as a list over all K atoms (None elsewhere)."""
    out: list[float | None] = [None] * K
    if values is None or atoms is None:
        return out
    for k, v in zip(atoms.tolist(), values.double().tolist(), strict=True):
        out[k] = v
    return out


def _atom_conditions(diagnostics: Diagnostics) -> dict[str, tuple[list[float | None], float]]:
    """Per-atom values of the checks that run over atoms: name → (values over all K, the check's tolerance).

    C1 active: max |g_kn − 1| over k's support; C2 as checked; E1 = ‖(c2, Σ_n a_nk(g_kn − 1)/‖α_k‖₁)‖ (its
    tangential and radial parts); with a bias the bias identity |Σ_{Z_k} g_kn + |S_k||/|S_k| and |Σ_{Z_k} p_kn − 1|.
    """
    checks: dict[str, Check] = {c.name: c for c in diagnostics.report.conditions}
    codes, arrays = diagnostics.codes, diagnostics.conditions
    K, N = codes.n_atoms, codes.n_points
    lam = diagnostics.report.problem.lam
    g = arrays.g_active.double()
    live = codes.counts > 0
    out: dict[str, tuple[list[float | None], float]] = {}
    if "C1 active" in checks:
        c1 = torch.zeros(K, dtype=torch.float64).scatter_reduce_(0, codes.cols, (g - 1).abs(), "amax")
        out["C1 active"] = (_per_atom(c1[live], torch.nonzero(live).flatten(), K), checks["C1 active"].tolerance)
    c2 = _per_atom(arrays.c2, arrays.live, K)
    if "C2" in checks:
        out["C2"] = (c2, checks["C2"].tolerance)
    if "E1" in checks:
        mass = codes.mass.double()
        radial = torch.zeros(K, dtype=torch.float64).index_add_(0, codes.cols, codes.values.double() * (g - 1))
        radial = radial / mass.clamp_min(1e-300)
        e1 = [None if c is None else math.hypot(c, r) for c, r in zip(c2, radial.tolist(), strict=True)]
        out["E1"] = (e1, checks["E1"].tolerance)
    if "bias identity" in checks or "E4 Σp = 1" in checks:
        W = diagnostics.dictionary.atoms.double()
        g_total = W @ arrays.residuals.double().sum(dim=0) / lam
        g_silent = g_total - torch.zeros(K, dtype=torch.float64).index_add_(0, codes.cols, g)
        n_active = codes.counts.double()
        if "bias identity" in checks:
            identity = (g_silent + n_active).abs() / n_active.clamp_min(1)
            values = [v if alive else None for v, alive in zip(identity.tolist(), live.tolist(), strict=True)]
            out["bias identity"] = (values, checks["bias identity"].tolerance)
        if "E4 Σp = 1" in checks:
            p_sum = ((N - n_active - g_silent) / N - 1).abs()
            out["E4 Σp = 1"] = (p_sum.tolist(), checks["E4 Σp = 1"].tolerance)
    return out


def nested_pairs(diagnostics: Diagnostics) -> list[dict[str, Any]]:
    """The label-free hierarchy flags of a diagnosis: every nested pair of the pairwise walk and the report's
    partly nested candidates that fail the 1-D hull test, each as {parent, child, nested, absorption_ratio,
    p_parent_given_child, p_child_given_parent, cosine, bound_slack}."""
    codes, report = diagnostics.codes, diagnostics.report
    K = codes.n_atoms
    counts = codes.counts.tolist()
    W = diagnostics.dictionary.atoms.double()
    failing = diagnostics.pairwise.failing_pairs.reshape(-1, 2)
    candidates = torch.tensor([[min(p.parent, p.child), max(p.parent, p.child)] for p in report.hierarchy.pairs])
    candidates = candidates.reshape(-1, 2).long()
    fails = torch.isin(candidates[:, 0] * K + candidates[:, 1], failing[:, 0] * K + failing[:, 1]).tolist()
    pairs: dict[tuple[int, int], dict[str, Any]] = {}
    for p, (a, b), failed in zip(report.hierarchy.pairs, candidates.tolist(), fails, strict=True):
        if p.nested or (failed and p.p_parent_given_child >= MOSTLY_NESTED):
            pairs[a, b] = {
                "parent": p.parent,
                "child": p.child,
                "nested": p.nested,
                "absorption_ratio": p.absorption_ratio,
                "p_parent_given_child": p.p_parent_given_child,
                "p_child_given_parent": p.p_child_given_parent,
                "cosine": p.cosine,
                "bound_slack": p.bound_slack,
            }
    # The walk's exceptions (j active at k's largest code) with M_{k|j} = 0 are every nested pair (margin −1).
    extra = diagnostics.pairwise.extra
    js, ks, margins = (extra.get(name) for name in ("exception_j", "exception_k", "exception_margin"))
    if js is not None and ks is not None and margins is not None and len(js):
        nested = margins.double() == -1
        for j, k in zip(js[nested].tolist(), ks[nested].tolist(), strict=True):
            key = (min(j, k), max(j, k))
            if key in pairs:
                continue
            # S_k ⊆ S_j; the parent is the larger support (ties: the smaller id), as in the hierarchy report.
            parent, child = (key[0], key[1]) if counts[key[0]] >= counts[key[1]] else (key[1], key[0])
            pairs[key] = {
                "parent": parent,
                "child": child,
                "nested": True,
                "absorption_ratio": 0.0,
                "p_parent_given_child": 1.0,
                "p_child_given_parent": counts[child] / counts[parent],
                "cosine": float(W[parent] @ W[child]),
                "bound_slack": None,
            }
    return list(pairs.values())


def _hierarchy(diagnostics: Diagnostics) -> dict[int, list[dict[str, Any]]]:
    """Each latent's hierarchy pairs (:func:`nested_pairs`) with its role and partner, most nested first."""
    out: dict[int, list[dict[str, Any]]] = {}
    for pair in nested_pairs(diagnostics):
        child, parent = pair["child"], pair["parent"]
        for latent, partner, role in ((child, parent, "child"), (parent, child, "parent")):
            entry = {"partner": partner, "role": role}
            entry |= {k: v for k, v in pair.items() if k not in ("parent", "child")}
            out.setdefault(latent, []).append(entry)
    for relations in out.values():
        relations.sort(
            key=lambda r: (not r["nested"], -r["p_parent_given_child"], -r["p_child_given_parent"], r["partner"])
        )
    return out


def _antipodal(diagnostics: Diagnostics) -> dict[int, list[dict[str, Any]]]:
    """Each latent's antipodal partners, most negative cosine first, with the report's split where it has one."""
    pairwise = diagnostics.pairwise
    splits = {(p.plus, p.minus): p for p in diagnostics.report.dense.antipodal_pairs}
    out: dict[int, list[dict[str, Any]]] = {}
    for (a, b), cos in zip(pairwise.antipodal_pairs.tolist(), pairwise.antipodal_cosines.tolist(), strict=True):
        split = splits.get((a, b))
        for latent, partner in ((a, b), (b, a)):
            entry: dict[str, Any] = {"partner": partner, "cosine": cos}
            if split is not None:
                sign = 1.0 if latent == split.plus else -1.0  # the split along this latent's own atom
                entry["bias_along_atom"] = None if split.bias_along_u is None else sign * split.bias_along_u
                entry["median_projection"] = sign * split.median_projection
                entry["prediction_max_excess"] = split.prediction_max_excess
            out.setdefault(latent, []).append(entry)
    for partners in out.values():
        partners.sort(key=lambda p: (p["cosine"], p["partner"]))
    return out


def _residual_on_support(diagnostics: Diagnostics) -> tuple[list[float | None], ...]:
    """Per atom over its support S_k: Σ(w_kᵀr_n)²/Σ‖r_n‖², mean ‖r_n‖/λ and the share of points with ‖r_n‖ > λ."""
    codes = diagnostics.codes
    K = codes.n_atoms
    lam = diagnostics.report.problem.lam
    norm = diagnostics.arrays.get("residual_norm_over_lambda")
    if norm is None:
        norm = diagnostics.conditions.residuals.double().norm(dim=1) / lam
    norm = norm.double()[codes.rows]  # ‖r_n‖/λ at every support entry
    g = diagnostics.conditions.g_active.double()  # w_kᵀr_n/λ at every support entry

    def total(values: Tensor) -> Tensor:
        return torch.zeros(K, dtype=torch.float64).index_add_(0, codes.cols, values)

    along, energy = total(g.square()), total(norm.square())
    n_active = codes.counts.double()
    mean_norm, above = total(norm) / n_active.clamp_min(1), total((norm > 1 + 1e-9).double()) / n_active.clamp_min(1)
    live = (codes.counts > 0).tolist()
    pairs = zip(along.tolist(), energy.tolist(), live, strict=True)
    share = [a / e if alive and e > 0 else None for a, e, alive in pairs]
    return (
        share,
        [v if alive else None for v, alive in zip(mean_norm.tolist(), live, strict=True)],
        [v if alive else None for v, alive in zip(above.tolist(), live, strict=True)],
    )
