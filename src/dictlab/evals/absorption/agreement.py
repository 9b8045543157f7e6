"""Agreement between label-based absorption and dictlab's label-free hierarchy diagnosis of the same SAE.

Label-based pairs (from :func:`.first_letter.first_letter_absorption` or :func:`.wordnet.wordnet_absorption`):
(a, m) where a is an absorbing latent of a probe-positive word of a class (a latent counted in its absorption
fraction, or the top-projection latent of a full absorption) and m one of that class's main latents.

Label-free flags: ``dictlab diagnose`` (:func:`dictlab.diagnostics.diagnose.diagnose_model`, with the SAE's own
encoder codes and λ given or estimated as the median w_kᵀr_n over active codes — TopK and other non-L1 SAEs have no
λ of their own, and the estimate is often ≤ 0 for them; the flags used here do not depend on λ, which only
enters the bound slack) run on the word-token activations the absorption eval read. A pair (parent p, child c) counts as
"flagged as an absorption pair" when the diagnosis puts it in the hierarchy — exactly the pairs behind the
``nested-*`` / ``partly-nested-*`` latent flags of ``dictlab features --diagnose``
(:mod:`dictlab.features.diagnosis`): nested supports (the child never fires without the parent, from the pairwise
hull test's exact walk), or a hierarchy candidate failing the 1-D hull test with P(parent | child) ≥ ½.

Why the word-token activations and not store rows: the label-based pairs are defined on those activations (the
absorbing latents fire on words in spelling prompts, contexts a Python-docs store rarely holds), so both sides
look at the same points; the price is a few thousand points, where rare latents are nested by chance.

A second label-free detector, the tilted pairs of the hierarchy summary (the absorbed configuration itself: the
child's atom tilted towards the parent's, the parent silent on part of the child's support), is scored the same way.

Matching is per unordered pair: a flagged {p, c} matches a label pair {a, m} when the two sets are equal
(``directed`` counts the matches with child = a and parent = m). Precision = matched flagged pairs / flagged pairs;
``precision_main`` restricts the flagged pairs to those touching a main latent of a counted class (the only pairs
the label-based side can find); recall = label pairs matched / label pairs. At the latent level: an absorbing
latent is recalled when it is in any flagged pair with any partner.

The label-free statistics of the label pairs themselves (P(main | absorbing), cosine, nested, bound slack, from
:func:`dictlab.diagnostics.hierarchy.hierarchy_pairs`) say why they are or are not flagged: absorption leaves
the main latent silent where the absorbing one fires (P(main | absorbing) ≈ 0), the opposite of nesting.
"""

import statistics
from collections.abc import Sequence
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from dictlab.diagnostics.diagnose import DiagnoseOptions, Diagnostics, diagnose_model
from dictlab.diagnostics.hierarchy import hierarchy_pairs, tilted_pairs
from dictlab.diagnostics.problem import DiagnosticsInputError
from dictlab.diagnostics.sae_mapping import dictionary_from_model, effective_lambda, encoder_codes
from dictlab.evals.absorption.words import AbsorptionPair, ClassAbsorption
from dictlab.features.diagnosis import nested_pairs
from dictlab.models.dictionary import SparseDictionary
from dictlab.stopwatch import Stopwatch


class AgreementOptions(BaseModel):
    """How the label-free side is computed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    lam: float | None = Field(
        default=None,
        gt=0,
        description="λ of the diagnosis. Default: the effective λ (median w_kᵀr_n over the encoder's active codes), "
        "or 1 when that is not positive (TopK). The flags (nested supports, the 1-D hull test, P(parent | child)) do "
        "not depend on λ; it only scales the bound slack.",
    )
    max_points: int = Field(default=100_000, gt=0, description="Activations (at most, the first ones) diagnosed.")


class FlaggedPair(BaseModel):
    parent: int
    child: int
    nested: bool
    p_parent_given_child: float
    cosine: float
    matched: bool = Field(description="Equal, as a set, to a label-based pair.")


class LabelPairStats(BaseModel):
    """The label-free statistics of the label-based pairs (the absorbing latent as the child)."""

    n_pairs: int
    n_nested: int = Field(description="Label pairs whose absorbing latent never fires without the main latent.")
    n_bound_violations: int
    median_p_main_given_absorbing: float | None
    median_cosine: float | None


class AbsorptionAgreement(BaseModel):
    """Precision and recall of the label-free hierarchy flags against label-based absorption pairs."""

    points: str = Field(description="Which activations were diagnosed.")
    n_points: int
    lam: float
    lam_source: str
    n_label_pairs: int
    n_flagged_pairs: int
    n_flagged_touching_main: int = Field(description="Flagged pairs with a main latent of a counted class in them.")
    n_matched_pairs: int
    n_matched_directed: int = Field(description="Matches with child = absorbing latent and parent = main latent.")
    precision: float | None
    precision_main: float | None = Field(description="Matched / flagged pairs touching a main latent.")
    recall: float | None
    n_absorbing_latents: int
    n_absorbing_latents_flagged: int
    latent_recall: float | None = Field(description="Share of absorbing latents in some flagged pair.")
    n_tilted_pairs: int = Field(
        default=0,
        description="Tilted pairs (the second label-free detector: child atom tilted to the parent's, "
        "parent silent on part of the child's support; dictlab.diagnostics.hierarchy.tilted_pairs).",
    )
    n_tilted_matched: int = Field(default=0, description="Tilted pairs equal, as a set, to a label-based pair.")
    tilted_precision: float | None = None
    tilted_recall: float | None = None
    label_pair_stats: LabelPairStats
    flagged_examples: list[FlaggedPair] = Field(description="Flagged pairs touching a main latent (at most 20).")
    seconds: float


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def absorption_agreement(
    dictionary: SparseDictionary,
    activations: Tensor,
    pairs: Sequence[AbsorptionPair],
    classes: Sequence[ClassAbsorption],
    options: AgreementOptions | None = None,
    points: str = "word-token activations of the absorption prompts",
    progress: bool = False,
) -> AbsorptionAgreement:
    """Diagnose ``dictionary`` on ``activations`` [N, d_in] and compare its hierarchy flags with ``pairs`` (the
    label-based pairs of an absorption result; ``classes`` its counted classes, for their main latents)."""
    del progress
    options = options or AgreementOptions()
    clock = Stopwatch()
    X = activations[: options.max_points].double()
    if options.lam is not None:
        lam, lam_source = options.lam, "given"
    else:
        try:
            lam = effective_lambda(X, dictionary_from_model(dictionary), encoder_codes(dictionary, X))
            lam_source = "effective λ: median w_kᵀr_n over the encoder's active codes"
        except DiagnosticsInputError as err:  # TopK codes often overshoot: the median is ≤ 0
            lam, lam_source = 1.0, f"1 (no effective λ: {err}); the flags do not depend on λ"
    diagnostics = diagnose_model(dictionary, X, options=DiagnoseOptions(lam=lam, codes="encoder", lp_pairs=0))
    flagged: dict[frozenset[int], dict[str, Any]] = {}
    for r in nested_pairs(diagnostics):
        flagged.setdefault(frozenset((r["parent"], r["child"])), r)
    label = {frozenset((p.absorbing, p.main)): p for p in pairs}
    mains = {m for c in classes for m in c.main_latents}
    matched = [key for key in flagged if key in label]
    directed = sum(
        1
        for key in matched
        if flagged[key]["child"] == label[key].absorbing and flagged[key]["parent"] == label[key].main
    )
    touching = [key for key in flagged if key & mains]
    absorbing = {p.absorbing for p in pairs}
    in_flagged = set().union(*flagged.keys()) if flagged else set()
    examples = [
        FlaggedPair(
            parent=flagged[key]["parent"],
            child=flagged[key]["child"],
            nested=flagged[key]["nested"],
            p_parent_given_child=flagged[key]["p_parent_given_child"],
            cosine=flagged[key]["cosine"],
            matched=key in label,
        )
        for key in sorted(touching, key=lambda k: (k not in label, sorted(k)))[:20]
    ]
    stats = _label_pair_stats(diagnostics, pairs, lam)
    tilted = {frozenset((t.parent, t.child)) for t in tilted_pairs(diagnostics.codes, diagnostics.dictionary.atoms)}
    tilted_matched = len(tilted & label.keys())
    return AbsorptionAgreement(
        points=points,
        n_points=len(X),
        lam=lam,
        lam_source=lam_source,
        n_label_pairs=len(label),
        n_flagged_pairs=len(flagged),
        n_flagged_touching_main=len(touching),
        n_matched_pairs=len(matched),
        n_matched_directed=directed,
        precision=_ratio(len(matched), len(flagged)),
        precision_main=_ratio(len(matched), len(touching)),
        recall=_ratio(len(matched), len(label)),
        n_absorbing_latents=len(absorbing),
        n_absorbing_latents_flagged=len(absorbing & in_flagged),
        latent_recall=_ratio(len(absorbing & in_flagged), len(absorbing)),
        n_tilted_pairs=len(tilted),
        n_tilted_matched=tilted_matched,
        tilted_precision=_ratio(tilted_matched, len(tilted)),
        tilted_recall=_ratio(tilted_matched, len(label)),
        label_pair_stats=stats,
        flagged_examples=examples,
        seconds=clock.total,
    )


def _label_pair_stats(diagnostics: Diagnostics, pairs: Sequence[AbsorptionPair], lam: float) -> LabelPairStats:
    """hierarchy_pairs on the label pairs, read with the absorbing latent as the child."""
    if not pairs:
        return LabelPairStats(
            n_pairs=0, n_nested=0, n_bound_violations=0, median_p_main_given_absorbing=None, median_cosine=None
        )
    request = torch.tensor([[p.absorbing, p.main] for p in pairs], dtype=torch.long)
    summary = hierarchy_pairs(
        diagnostics.codes,
        diagnostics.dictionary.atoms,
        diagnostics.conditions.residuals,
        lam,
        request,
        limit=len(request),
    )
    by_pair = {frozenset((h.parent, h.child)): h for h in summary.pairs}
    counts = diagnostics.codes.counts
    p_main, cosines, nested, violations = [], [], 0, 0
    for p in pairs:
        h = by_pair.get(frozenset((p.absorbing, p.main)))
        if h is None:  # one of the two never fires on these points
            continue
        both = h.p_parent_given_child * float(counts[h.child])
        p_main.append(both / float(counts[p.absorbing]))
        cosines.append(h.cosine)
        nested += int(h.nested and h.child == p.absorbing)
        violations += int(h.bound_slack < -1e-9)
    return LabelPairStats(
        n_pairs=len(pairs),
        n_nested=nested,
        n_bound_violations=violations,
        median_p_main_given_absorbing=_median(p_main),
        median_cosine=_median(cosines),
    )
