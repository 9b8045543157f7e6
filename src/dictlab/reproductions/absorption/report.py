"""Claims and results.md of ``dictlab reproduce absorption``."""

from typing import TYPE_CHECKING

from dictlab.report.markdown import fmt, markdown_table
from dictlab.reproductions.claims import Claim, claim, claims_table

if TYPE_CHECKING:
    from dictlab.reproductions.absorption.run import AbsorptionBenchResults, Detection

DETECTORS = ("label-based", "nested", "tilted")


def _pr(d: "Detection | None") -> str:
    if d is None:
        return "–"
    return f"{fmt(d.precision)} / {fmt(d.recall)} ({d.both}/{d.flagged} of {d.reference})"


def absorption_claims(r: "AbsorptionBenchResults") -> list[Claim]:
    gt, saes = r.dictionaries[0], r.dictionaries[1:]
    nested_gt = gt.detectors["nested"]["planted"]
    claims = [
        claim(
            "The GT dictionary's planted pairs are nested, and the nested-pair flags find them",
            "recall 1 against the planted pairs (a child fires only with its parent; arXiv 2606.02385 §5)",
            _pr(nested_gt),
            nested_gt.recall == 1.0,
        ),
        claim(
            "Trained SAEs absorb planted children",
            "absorbed pairs > 0 (arXiv 2512.05534 Theorem 3.8; arXiv 2409.14507)",
            "; ".join(f"{d.label}: {d.n_absorbed_pairs}/{d.n_planted_pairs}" for d in saes),
            any(d.n_absorbed_pairs > 0 for d in saes),
        ),
    ]
    nested_found = sum(d.detectors["nested"]["absorbed"].both for d in saes)
    claims.append(
        claim(
            "Absorbed pairs are no longer nested",
            "nested flags find 0 absorbed pairs: absorption (parent silent on part of the child's support) is how "
            "training resolves the nested pair the conditions forbid (arXiv 2606.02385 §5)",
            f"{nested_found} absorbed pairs flagged nested in {len(saes)} SAEs",
            nested_found == 0,
        )
    )
    for name in DETECTORS:
        found = [d.detectors[name]["absorbed"] for d in saes if name in d.detectors]
        both = sum(x.both for x in found)
        flagged = sum(x.flagged for x in found)
        reference = sum(x.reference for x in found)
        claims.append(
            claim(
                f"{name} detector finds the measured absorption (all SAEs pooled)",
                "precision and recall against the GT-measured absorbed pairs",
                f"precision {fmt(both / flagged if flagged else None)}, recall "
                f"{fmt(both / reference if reference else None)} ({both} of {flagged} flagged, {reference} absorbed)",
                None,
            )
        )
    return claims


def absorption_markdown(r: "AbsorptionBenchResults") -> str:
    rows = []
    for d in r.dictionaries:
        rows.append(
            [
                d.label,
                fmt(d.l0),
                fmt(d.fvu),
                f"{d.matched_features}/{r.config.data.n_features}",
                d.n_planted_pairs,
                d.n_absorbed_pairs,
                *[_pr(d.detectors.get(name, {}).get("absorbed")) for name in DETECTORS],
                *[_pr(d.detectors.get(name, {}).get("planted")) for name in DETECTORS[1:]],
                _pr(d.detectors.get("nested", {}).get("label-based")),
                _pr(d.detectors.get("tilted", {}).get("label-based")),
            ]
        )
    table = markdown_table(
        [
            "dictionary", "L0", "FVU", "matched GT", "planted pairs", "absorbed pairs",
            "label-based vs absorbed", "nested vs absorbed", "tilted vs absorbed",
            "nested vs planted", "tilted vs planted", "nested vs label-based", "tilted vs label-based",
        ],
        rows,
    )  # fmt: skip
    numbers = markdown_table(
        ["SAE", "mean absorption fraction", "mean full absorption", "split features", "parent probe F1"],
        [
            [
                d.label,
                *[fmt(d.label_based.get(k)) for k in ("mean_absorption_fraction", "mean_full_absorption")],
                fmt(d.label_based.get("mean_num_split_features")),
                fmt(d.label_based.get("probe_mean_f1")),
            ]
            for d in r.dictionaries[1:]
        ],
    )
    c = r.config
    return "\n".join(
        [
            "# Absorption on the bench: label-based metric against the label-free hierarchy flags",
            "",
            f"Bench: {c.data.n_features} features in {c.data.d_in} dimensions, {c.data.n_parents} planted parents × "
            f"{c.data.children_per_parent} children, sparsity {c.data.sparsity}, {c.data.n_train:,} training and "
            f"{c.data.n_test:,} test points; SAEs with {c.d_sae} latents, {c.steps} Adam steps. A latent is a GT "
            f"feature's at decoder cosine ≥ {c.match_cosine}; a planted edge is absorbed when the parent's latent is "
            f"silent on ≥ {c.absorbed_share:.0%} of the child's points where the child's latent fires and the child's "
            f"atom carries the parent direction (coefficient ≥ {c.min_parent_component} on the parent feature in the "
            "basis of the two features).",
            "",
            "Each cell: precision / recall (pairs found / flagged of reference), unordered latent pairs.",
            "",
            table,
            "",
            "## The label-based metric's own numbers",
            "",
            numbers,
            "",
            "## Claims",
            "",
            claims_table(r.claims),
        ]
    )
