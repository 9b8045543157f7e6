"""Data-driven notes for results.md: how our numbers relate to the paper's, computed from the records."""

from collections.abc import Sequence
from functools import cache

from dictlab.metrics import random_dictionary_mip, random_directions
from dictlab.models import activation_names
from dictlab.reproductions.bench.presets import BenchPreset
from dictlab.reproductions.bench.records import BenchRecord
from dictlab.reproductions.expected import METHOD_ORDER, PAPER_TABLE1, PAPER_TABLE1_SETTING


def paper_saes(**capabilities: bool) -> tuple[str, ...]:
    """The paper's SAE methods (Table 1 rows named after an activation) with the given capabilities, in order."""
    chosen = set(activation_names(**capabilities))
    return tuple(m for m in METHOD_ORDER if m in chosen)


TOPK_FAMILY = paper_saes(uses_k=True)
"""The paper's SAEs whose sparsity is set by k: TopK, BatchTopK, Matryoshka."""
PENALISED = paper_saes(has_sparsity_penalty=True)
"""The paper's SAEs trained with a sparsity coefficient: ReLU, JumpReLU."""
WELL_BELOW = 0.2
"""A method falls "well below" the TopK family when its decoder GT@0.95 is at least this much lower."""


@cache
def paper_chance_mip() -> float:
    """MIP of n_q = 16000 random directions against 1000 random unit features in 768 dimensions (Table 1's shape)."""
    setting = PAPER_TABLE1_SETTING
    return random_dictionary_mip(random_directions(setting.n_features, setting.n_p, seed=1), setting.n_q)


def _find(records: Sequence[BenchRecord], method: str, anchored: bool) -> BenchRecord | None:
    return next((r for r in records if r.method == method and r.anchored == anchored), None)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def bench_notes(records: Sequence[BenchRecord], preset: BenchPreset, sweep: Sequence[BenchRecord] = ()) -> list[str]:
    """Bullet notes comparing ``records`` (and the sparsity ``sweep``) with the paper's Table 1."""
    notes = []
    data = preset.data
    notes.append(
        f"Scale: n={data.n_features} features in d={data.d_in}, n_q={preset.d_sae}, S={data.sparsity}, "
        f"M={data.max_interference}, N={data.n_train}; the paper uses n=1000, d=768, n_q=16000, S=0.99, M=0.1, "
        "N=100k. Compare patterns, not absolute values, unless the preset is `paper`."
    )
    family = [r for m in TOPK_FAMILY if (r := _find(records, m, False)) is not None]
    if family:
        dec_gt = _mean([r.gt_recovery_dec for r in family])
        enc_gt = _mean([r.gt_recovery_enc for r in family])
        enc_mip = _mean([r.mip_enc for r in family])
        dec_mip = _mean([r.mip_dec for r in family])
        paper_gt = _mean([PAPER_TABLE1[r.method].gt_percent / 100 for r in family])
        closer = "decoder columns" if abs(dec_gt - paper_gt) <= abs(enc_gt - paper_gt) else "encoder rows"
        notes.append(
            f"Encoder vs decoder: the paper states its metrics on encoder rows. For the TopK family our decoder "
            f"columns reach GT@0.95 {dec_gt:.1%} (MIP {dec_mip:.3f}) and our encoder rows {enc_gt:.1%} "
            f"(MIP {enc_mip:.3f}), against the paper's {paper_gt:.1%}; the paper's numbers are matched by our "
            f"**{closer}**. An encoder row must also cancel the features that interfere with its own, so it is "
            "not the feature direction even when the decoder column is; never compare a decoder number with an "
            "encoder number silently."
        )
    anchoring = _anchoring_note(records, preset)
    if anchoring:
        notes.append(anchoring)
    relu = [r for m in PENALISED if (r := _find(records, m, False)) is not None]
    if relu and family:
        notes.append(_relu_note(relu, sweep, dec_gt))
        early = _early_training_note([*relu, *family])
        if early:
            notes.append(early)
    cross = _find(records, "crosscoder", False)
    if cross is not None:
        paper = PAPER_TABLE1["crosscoder"].gt_percent / 100
        relation = "above" if cross.gt_recovery_dec > paper else "not above"
        notes.append(
            f"Crosscoder: {data.n_sources} sources with shared codes, so it is an SAE on the concatenated bench; it "
            f"scores {cross.gt_recovery_dec:.1%} (decoder), {relation} the paper's {paper:.2%}, whose "
            "construction is unstated. Transcoder targets come from an independent feature matrix W_r (decoder "
            "metric against W_r)."
        )
    notes.append(
        "Matryoshka uses nested latent prefixes "
        f"{list(preset.matryoshka_prefixes)} of n_q with BatchTopK codes (the standard reading of the paper's Eq. 9)."
    )
    return notes


def _relu_note(relu: Sequence[BenchRecord], sweep: Sequence[BenchRecord], family_dec_gt: float) -> str:
    """ReLU/JumpReLU vs the TopK family, over the sweep, and the paper's 0 % read against the chance-level MIP."""
    parts, differs = [], []
    for plain in relu:
        method = plain.method
        runs = [plain, *(r for r in sweep if r.method == method)]
        best = max(r.gt_recovery_dec for r in runs)
        verdict = "well below" if best <= family_dec_gt - WELL_BELOW else "NOT well below"
        if verdict != "well below":
            top = max(runs, key=lambda r: r.gt_recovery_dec)
            dense = max(runs, key=lambda r: r.l0)
            differs.append(
                f"{method} reaches {top.gt_recovery_dec:.1%} at L0 {top.l0:.1f} (coefficient "
                f"{top.sparsity_coefficient:g}) and {dense.gt_recovery_dec:.1%} at its densest, "
                f"L0 {dense.l0:.1f}"
            )
        text = (
            f"{method}: decoder GT@0.95 {plain.gt_recovery_dec:.1%} at L0 {plain.l0:.1f} "
            f"(coefficient {plain.sparsity_coefficient:g})"
        )
        if len(runs) > 1:
            low, high = min(r.gt_recovery_dec for r in runs), best
            l0s = [r.l0 for r in runs]
            text += f", {low:.1%}–{high:.1%} over the sweep (L0 {min(l0s):.1f}–{max(l0s):.1f})"
        parts.append(f"{text}: {verdict} the TopK family's {family_dec_gt:.1%}")
    paper_relu, paper_jump = PAPER_TABLE1["relu"].mip, PAPER_TABLE1["jumprelu"].mip
    ours = ", ".join(f"{r.method} {r.mip_enc:.3f}" for r in relu)
    pattern = (
        "The paper's pattern is NOT reproduced at the best swept coefficient: "
        + "; ".join(differs)
        + ". Recovery of these penalised SAEs hinges on the coefficient (and, see the next note, on training length)."
        if differs
        else "The paper's pattern (both well below the TopK family) is reproduced."
    )
    return (
        "ReLU/JumpReLU vs the TopK family — "
        + "; ".join(parts)
        + f". The paper reports 0 % for both, with M_IP {paper_relu:.3f} / {paper_jump:.3f}: barely above the "
        f"{paper_chance_mip():.3f} that {PAPER_TABLE1_SETTING.n_q} random directions score at its shape, so its "
        "ReLU and JumpReLU SAEs learned almost none of the features (with coefficients it does not state). Our "
        f"encoder MIPs are {ours} against a chance level of {relu[0].mip_chance:.3f}. {pattern}"
    )


def _anchoring_note(records: Sequence[BenchRecord], preset: BenchPreset) -> str | None:
    """How anchoring moved the MIP of the non-anchored features, and why it can cost a little here."""
    pairs = [
        (plain, anchored)
        for method in sorted({r.method for r in records})
        if (plain := _find(records, method, False)) is not None and (anchored := _find(records, method, True))
    ]
    if not pairs:
        return None
    lowered, deltas = [], []
    for plain, anchored in pairs:
        for side in ("enc", "dec"):
            delta = getattr(anchored, f"mip_{side}") - getattr(plain, f"mip_{side}")
            deltas.append(delta)
            if delta < 0:
                lowered.append(f"{plain.method} ({side} {delta:+.4f})")
    terms = {"both": "both terms (the paper's)", "encoder": "encoder term only", "decoder": "decoder term only"}
    setting = f"{preset.n_anchors} anchors, λ_anchor {preset.anchor_coefficient:g}, {terms[preset.anchor_terms]}"
    head = f"Anchoring ({setting}): "
    if not lowered:
        return head + "did not lower the MIP of the non-anchored features for any method (encoder or decoder)."
    gains = [row.fa_mip - row.mip for row in PAPER_TABLE1.values()]
    text = (
        head
        + f"MIP changes range {min(deltas):+.4f} to {max(deltas):+.4f}; it LOWERED the MIP of the non-anchored "
        + "features for "
        + ", ".join(lowered)
        + f", where the paper reports changes of {min(gains):+.3f} to {max(gains):+.3f} (this differs). "
    )
    family = [p.mip_dec for p, _ in pairs if p.method in TOPK_FAMILY]
    if family:
        paper = [PAPER_TABLE1[m].mip for m in TOPK_FAMILY]
        text += (
            f"Why: our plain TopK-family runs already reach decoder MIP ≥ {min(family):.3f} (the paper's: "
            f"{min(paper):.3f}–{max(paper):.3f}), so anchoring has almost no spurious minimum left to repair and "
            "only its cost remains. "
        )
    if preset.anchor_terms != "decoder":
        text += (
            "That cost comes mostly from the encoder term: it pins each anchored encoder row to its feature "
            "direction, whereas the loss-optimal encoder row also cancels the features that interfere with it (see "
            "the encoder-vs-decoder note), so the anchored latents' codes carry interference that the other latents "
            "absorb. `dictlab bench --anchor-terms decoder` anchors decoder columns only, to separate the two."
        )
    return text


EARLY_FRACTION = 0.1
"""The early-training point the notes report: the first probe at or after this fraction of the run."""
NEAR_CHANCE = 0.05
"""A decoder MIP within this of the random-dictionary MIP counts as "near chance"."""


def _early_training_note(runs: Sequence[BenchRecord]) -> str | None:
    """Recovery of each plain run at ≈10 % of training, from its ``trajectory`` (the paper's budget is unstated)."""
    points, early_mip = [], {}
    for run in runs:
        trajectory = run.trajectory
        steps = trajectory.step
        if not steps:
            continue
        index = next(i for i, step in enumerate(steps) if step >= EARLY_FRACTION * steps[-1])
        early_mip[run.method] = trajectory.mip_dec[index]
        points.append(
            f"{run.method} {trajectory.mip_dec[index]:.3f} / {trajectory.gt_recovery_dec[index]:.1%}"
            f" (step {steps[index]})"
        )
    if not points:
        return None
    chance = runs[0].mip_chance
    text = (
        f"Training budget (the paper does not state its own): at ≈{EARLY_FRACTION:.0%} of training, decoder MIP / "
        "GT@0.95 were "
        + "; ".join(points)
        + f"; a random dictionary scores MIP {chance:.3f} (figure: training_trajectories.png)."
    )
    near_chance = [m for m in PENALISED if m in early_mip and early_mip[m] < chance + NEAR_CHANCE]
    ahead = [m for m in TOPK_FAMILY if m in early_mip and early_mip[m] >= chance + NEAR_CHANCE]
    if near_chance and ahead:
        text += (
            f" Stopped there, {' and '.join(near_chance)} would sit near chance — the "
            f"paper's Table-1 pattern — while {', '.join(ahead)} are already well above it: the gap the paper "
            "reports is what a short training budget produces here."
        )
    return text
