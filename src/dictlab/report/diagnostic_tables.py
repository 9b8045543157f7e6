"""Plain-text and markdown summaries of a diagnostics report."""

from dictlab.diagnostics.diagnose import DiagnosticsReport
from dictlab.report.markdown import fmt


def diagnostics_summary(report: DiagnosticsReport) -> str:
    """A fixed-width summary: the problem, every condition, the pair test, residuals and the convex bound."""
    p = report.problem
    lines = [
        f"(P_K) at λ = {p.lam:.5g} ({p.lam_source}); effective λ {fmt(p.effective_lam, 5)}; "
        f"{'with' if p.bias else 'without'} bias; {p.codes} codes",
        f"{p.n_points} points × {p.dim} dims, {p.n_atoms} atoms ({p.n_live_atoms} live), mean L0 {p.mean_l0:.2f}",
        "",
        f"{'condition':<16}{'holds':>6}{'median':>11}{'q99':>11}{'max':>11}  {'coverage':<9}over",
        "-" * 100,
    ]
    for check in report.conditions:
        d = check.distribution
        lines.append(
            f"{check.name:<16}{'yes' if check.holds else 'NO':>6}{fmt(d.q50):>11}{fmt(d.q99):>11}{fmt(d.max):>11}"
            f"  {'exact' if check.exact else 'sampled':<9}{check.over}"
        )
    lines += [f"  {check.name} sample: {check.error_bound}" for check in report.conditions if check.error_bound]
    pw = report.pairwise
    lines += [
        "",
        f"pairwise {pw.form} test: {pw.n_failing_pairs} of {pw.n_pairs} pairs fail, {pw.n_nested_pairs} nested "
        f"({pw.seconds:.2f} s)",
    ]
    for v in pw.worst[:5]:
        lines.append(
            f"  atoms {v.j:>6} {v.k:>6}  (active on {v.support_j}, {v.support_k})  c {v.cosine:+.3f}  "
            f"margins {fmt(v.margin_k_given_j)} / {fmt(v.margin_j_given_k)}  "
            f"{'passes' if v.passes else 'FAILS'}{'  nested' if v.nested else ''}"
        )
    infeasible = [lp for lp in report.lp if not lp.feasible]
    lines.append(f"LP hull test: {len(report.lp) - len(infeasible)} of {len(report.lp)} feasible")
    h, d = report.hierarchy, report.dense
    lines.append(
        f"hierarchy: {h.n_nested} nested of {h.n_candidates} candidate pairs, {h.n_bound_violations} bound violations; "
        f"{h.n_tilted} tilted pairs (child atom tilted to the parent's, parent silent on part of its support)"
    )
    lines.append(f"dense atoms (density > ½): {d.n_dense}; antipodal pairs (c < −0.95): {d.n_antipodal_pairs}")
    r = report.residuals
    lines.append(
        f"residuals: ‖r‖/λ median {fmt(r.residual_norm_over_lambda.q50)}, {100 * r.fraction_above_lambda:.1f} % "
        f"of points above λ; split pressure median {fmt(r.split_pressure.q50)}"
    )
    if r.shrinkage_error_bound:
        lines.append(f"  shrinkage distributions sampled: {r.shrinkage_error_bound}")
    w = report.wide_limit
    lines.append(
        f"wide limit: P_∞ = {w.value:.6g}, dictionary {fmt(w.dictionary_loss, 6)}, gap {fmt(w.gap, 4)} "
        f"({fmt(None if w.relative_gap is None else 100 * w.relative_gap, 3)} %)"
    )
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)
