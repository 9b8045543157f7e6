"""Data-driven notes for results.md: how our numbers relate to the paper's, computed from the records."""

from collections.abc import Mapping, Sequence
from typing import Any

from dictlab.experiments.presets import BenchPreset
from dictlab.report.paper_tables import PAPER_TABLE1

TOPK_FAMILY = ("topk", "batchtopk", "matryoshka")


def _find(records: Sequence[Mapping[str, Any]], method: str, anchored: bool) -> Mapping[str, Any] | None:
    return next((r for r in records if r["method"] == method and r["anchored"] == anchored), None)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def bench_notes(records: Sequence[Mapping[str, Any]], preset: BenchPreset) -> list[str]:
    """Bullet notes comparing ``records`` with the paper's Table 1 (encoder vs decoder, anchoring, scale)."""
    notes = []
    data = preset.data
    notes.append(
        f"Scale: n={data.n_features} features in d={data.d_in}, n_q={preset.d_sae}, S={data.sparsity}, "
        f"M={data.max_interference}, N={data.n_train}; the paper uses n=1000, d=768, n_q=16000, S=0.99, M=0.1, "
        "N=100k. Compare patterns, not absolute values, unless the preset is `paper`."
    )
    family = [r for m in TOPK_FAMILY if (r := _find(records, m, False)) is not None]
    if family:
        dec_gt = _mean([r["gt_recovery_dec"] for r in family])
        enc_gt = _mean([r["gt_recovery_enc"] for r in family])
        enc_mip = _mean([r["mip_enc"] for r in family])
        dec_mip = _mean([r["mip_dec"] for r in family])
        paper_gt = _mean([PAPER_TABLE1[r["method"]].gt_percent / 100 for r in family])
        closer = "decoder columns" if abs(dec_gt - paper_gt) <= abs(enc_gt - paper_gt) else "encoder rows"
        notes.append(
            f"Encoder vs decoder: the paper states its metrics on encoder rows. For the TopK family our decoder "
            f"columns reach GT@0.95 {dec_gt:.1%} (MIP {dec_mip:.3f}) and our encoder rows {enc_gt:.1%} "
            f"(MIP {enc_mip:.3f}), against the paper's {paper_gt:.1%}; the paper's numbers are matched by our "
            f"**{closer}**. An encoder row must also cancel the features that interfere with its own, so it is "
            "not the feature direction even when the decoder column is; never compare a decoder number with an "
            "encoder number silently."
        )
    lowered = []
    for method in sorted({r["method"] for r in records}):
        plain, anchored = _find(records, method, False), _find(records, method, True)
        if plain is None or anchored is None:
            continue
        for side in ("enc", "dec"):
            delta = anchored[f"mip_{side}"] - plain[f"mip_{side}"]
            if delta < 0:
                lowered.append(f"{method} ({side} {delta:+.4f})")
    if lowered:
        notes.append("Anchoring LOWERED the MIP of non-anchored features for: " + ", ".join(lowered) + ".")
    else:
        notes.append("Anchoring did not lower the MIP of non-anchored features for any method (encoder or decoder).")
    relu = [r for m in ("relu", "jumprelu") if (r := _find(records, m, False)) is not None]
    if relu and family:
        notes.append(
            "ReLU/JumpReLU vs the TopK family: decoder GT@0.95 "
            + ", ".join(f"{r['method']} {r['gt_recovery_dec']:.1%} at L0 {r['l0']:.1f}" for r in relu)
            + f" vs {dec_gt:.1%} for the TopK family (paper: 0 % for ReLU/JumpReLU, whose coefficients it does not "
            "state; ours are the preset's `relu_coefficient` / `jumprelu_coefficient`)."
        )
    cross = _find(records, "crosscoder", False)
    if cross is not None:
        paper = PAPER_TABLE1["crosscoder"].gt_percent / 100
        relation = "above" if cross["gt_recovery_dec"] > paper else "not above"
        notes.append(
            f"Crosscoder: {data.n_sources} sources with shared codes, so it is an SAE on the concatenated bench; it "
            f"scores {cross['gt_recovery_dec']:.1%} (decoder), {relation} the paper's {paper:.2%}, whose "
            "construction is unstated. Transcoder targets come from an independent feature matrix W_r (decoder "
            "metric against W_r)."
        )
    notes.append(
        "Matryoshka uses nested latent prefixes "
        f"{list(preset.matryoshka_prefixes)} of n_q with BatchTopK codes (the standard reading of the paper's Eq. 9)."
    )
    return notes
