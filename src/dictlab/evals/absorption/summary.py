"""A markdown summary of an absorption result: the probe's quality, the absorption rates and the agreement."""

from dictlab.evals.absorption.agreement import AbsorptionAgreement
from dictlab.evals.absorption.first_letter import FirstLetterAbsorptionResult
from dictlab.evals.absorption.wordnet import WordNetAbsorptionResult


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def absorption_markdown(
    result: FirstLetterAbsorptionResult | WordNetAbsorptionResult, agreement: AbsorptionAgreement | None = None
) -> str:
    """Probe accuracy per class and overall, SAEBench's absorption means, per-class rates and (optionally) P/R."""
    agreement = agreement or result.agreement
    first_letter = isinstance(result, FirstLetterAbsorptionResult)
    kind = "letter" if first_letter else "lexname"
    classes = result.letters if isinstance(result, FirstLetterAbsorptionResult) else result.lexnames
    probe, means = result.probe, result.means
    counted = sum(1 for c in classes if c.num_probe_true_positives)
    lines = [
        f"## {'First-letter' if first_letter else 'WordNet lexname'} absorption ({result.model}, {result.module})",
        "",
        f"Probe on {probe.n_test} held-out words ({probe.n_train} train, {len(probe.classes)} {kind}s): top-1 "
        f"accuracy {_f(probe.top1_accuracy)} (largest-{kind} baseline {_f(probe.majority_baseline)}), mean "
        f"one-vs-rest F1 {_f(probe.mean_f1)}.",
        "",
        f"| metric | value |\n|---|---|\n| mean absorption fraction | {_f(means.mean_absorption_fraction_score)} |\n"
        f"| mean full absorption | {_f(means.mean_full_absorption_score)} |\n"
        f"| mean split features | {_f(means.mean_num_split_features, 2)} |\n"
        f"| {kind}s counted (probe F1 > {result.options.get('min_probe_f1')}) | {counted}"
        f"{'' if result.enough_classes else ' (fewer than SAEBench requires)'} |",
        "",
        f"| {kind} | probe F1 | probe accuracy | main latents | true positives | full absorption | absorption "
        "fraction |",
        "|---|---|---|---|---|---|---|",
    ]
    stats = {s.name: s for s in probe.classes}
    for c in classes:
        lines.append(
            f"| {c.name} | {_f(c.probe_f1)} | {_f(stats[c.name].accuracy)} | {', '.join(map(str, c.main_latents))} | "
            f"{c.num_probe_true_positives} | {_f(c.full_absorption_rate)} | {_f(c.mean_absorption_fraction)} |"
        )
    skipped = [s for s in probe.classes if s.name not in {c.name for c in classes}]
    if skipped:
        lines += ["", f"Not counted (probe F1 too low): {', '.join(f'{s.name} ({s.f1:.2f})' for s in skipped)}."]
    if agreement is not None:
        a = agreement
        lines += [
            "",
            f"Agreement with the label-free hierarchy flags (on {a.n_points} {a.points}, λ = {a.lam:.3g}): "
            f"{a.n_flagged_pairs} flagged pairs ({a.n_flagged_touching_main} touching a main latent), "
            f"{a.n_label_pairs} label-based pairs, {a.n_matched_pairs} matched — precision {_f(a.precision)} "
            f"(among pairs touching a main latent {_f(a.precision_main)}), recall {_f(a.recall)}, latent-level "
            f"recall {_f(a.latent_recall)}. Tilted pairs: {a.n_tilted_pairs}, {a.n_tilted_matched} matched — "
            f"precision {_f(a.tilted_precision)}, recall {_f(a.tilted_recall)}. Median P(main | absorbing) over the "
            f"label pairs: {_f(a.label_pair_stats.median_p_main_given_absorbing)}.",
        ]
    return "\n".join(lines) + "\n"
