"""Tables from bench records: Table 1 beside the paper's numbers, per-run metrics, the sparsity sweep.

Cells are strings; missing runs or values render as "–". ``results.md``, ``report.html`` and the console table
are all rendered from these :class:`~dictlab.report.html.Table` values.
"""

import math
from collections.abc import Sequence

from dictlab.report.html import Table
from dictlab.report.markdown import MISSING
from dictlab.reproductions.bench.records import BenchRecord, check_unique
from dictlab.reproductions.expected import METHOD_ORDER, PAPER_TABLE1, PAPER_TABLE1_NOTE, PAPER_TABLE1_SETTING

RunKey = tuple[str, bool]


def run_label(key: RunKey) -> str:
    """'topk' or 'topk +FA'."""
    method, anchored = key
    return f"{method} +FA" if anchored else method


def method_sort_key(method: str) -> tuple[int, str]:
    """Paper order first, other methods after it alphabetically."""
    if method in METHOD_ORDER:
        return (METHOD_ORDER.index(method), method)
    return (len(METHOD_ORDER), method)


def sorted_records(records: Sequence[BenchRecord]) -> list[BenchRecord]:
    """Records in paper method order, plain before +FA (each run at most once)."""
    return sorted(check_unique(records), key=lambda r: (method_sort_key(r.method), r.anchored))


def methods_in_table(records: Sequence[BenchRecord]) -> list[str]:
    """All paper methods, then any other method present in ``records``."""
    extra = sorted({r.method for r in records} - set(METHOD_ORDER))
    return [*METHOD_ORDER, *extra]


def missing_runs(records: Sequence[BenchRecord]) -> list[RunKey]:
    """The (method, anchored) runs of the paper's methods × {plain, +FA} grid that ``records`` lacks."""
    present = {(r.method, r.anchored) for r in check_unique(records)}
    return [(m, a) for m in METHOD_ORDER for a in (False, True) if (m, a) not in present]


def runs_summary(records: Sequence[BenchRecord]) -> list[str]:
    """One line with the run count, and one naming the missing runs when the grid is incomplete."""
    missing = missing_runs(records)
    grid = 2 * len(METHOD_ORDER)
    lines = [f"Runs: {grid - len(missing)} of {grid} ({len(METHOD_ORDER)} methods × {{plain, +FA}})."]
    if missing:
        lines.append("Missing runs (shown as –): " + ", ".join(run_label(k) for k in missing) + ".")
    return lines


TABLE1_TITLE = "Table 1: ground-truth recovery, ours vs the paper"
TABLE1_INTRO = (
    f"Ours: GT recovery at τ = {PAPER_TABLE1_SETTING.tau} (%) and MIP over non-anchored features, "
    "measured on decoder columns (W_dec) and on encoder rows (W_enc). "
    f"{PAPER_TABLE1_NOTE} Only our encoder columns measure the same quantity as the paper's."
)
RUNS_TABLE_TITLE = "Extra metrics per run"
RUNS_TABLE_INTRO = (
    "GT@0.90 on non-anchored features; anchored-subset MIP is over the anchored features alone (– when not "
    "anchored); random-dictionary MIP = the MIP of n_q uniformly random directions (the chance level a MIP is read "
    "against); dead = fraction of latents that never fire on the test split."
)
SWEEP_TITLE = "Sparsity-coefficient sweep (ReLU L1, JumpReLU L0; no anchoring)"
SWEEP_INTRO = (
    "The paper states no sparsity coefficient for its ReLU and JumpReLU SAEs, so the bench also trains each at the "
    "preset's sweep of coefficients (same data, initialisation and batches). The row marked * is the Table-1 run."
)


def format_number(value: float | None, digits: int, *, scale: float = 1.0) -> str:
    """``value * scale`` with ``digits`` decimals; None → '–'; NaN/Inf spelled out."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    return f"{value * scale:.{digits}f}"


def percent(value: float | None) -> str:
    """A [0, 1] fraction as a percentage with 1 decimal."""
    return format_number(value, 1, scale=100.0)


def fraction(value: float | None, digits: int = 3) -> str:
    """A number with ``digits`` decimals (MIP, MCC, ...)."""
    return format_number(value, digits)


def _paper_cells(method: str) -> tuple[str, str, str, str]:
    row = PAPER_TABLE1.get(method)
    if row is None:
        return (MISSING, MISSING, MISSING, MISSING)
    star = "*" if row.gt_below_threshold else ""
    return (
        f"{row.gt_percent:.2f}{star}",
        f"{row.mip:.3f}",
        f"{row.fa_gt_percent:.2f}{star}",
        f"{row.fa_mip:.3f}",
    )


def table1(records: Sequence[BenchRecord]) -> Table:
    """Table-1-style: ours (decoder, encoder; plain and +FA) beside the paper's encoder-row numbers."""
    by_run = {(r.method, r.anchored): r for r in check_unique(records)}
    tau = f"{PAPER_TABLE1_SETTING.tau:.2f}"
    columns = (
        "method",
        f"ours decoder GT@{tau} (%)",
        "ours decoder MIP",
        f"ours +FA decoder GT@{tau} (%)",
        "ours +FA decoder MIP",
        f"ours encoder GT@{tau} (%)",
        "ours encoder MIP",
        f"ours +FA encoder GT@{tau} (%)",
        "ours +FA encoder MIP",
        "paper encoder M_GT (%)",
        "paper encoder M_IP",
        "paper +FA encoder M_GT (%)",
        "paper +FA encoder M_IP",
    )
    rows = []
    for method in methods_in_table(list(by_run.values())):
        plain, anchored = by_run.get((method, False)), by_run.get((method, True))
        rows.append(
            (
                method,
                percent(plain and plain.gt_recovery_dec),
                fraction(plain and plain.mip_dec),
                percent(anchored and anchored.gt_recovery_dec),
                fraction(anchored and anchored.mip_dec),
                percent(plain and plain.gt_recovery_enc),
                fraction(plain and plain.mip_enc),
                percent(anchored and anchored.gt_recovery_enc),
                fraction(anchored and anchored.mip_enc),
                *_paper_cells(method),
            )
        )
    groups = (
        ("", 1),
        ("ours: decoder columns (W_dec)", 4),
        ("ours: encoder rows (W_enc)", 4),
        (f"paper Table 1: encoder rows, n_q = {PAPER_TABLE1_SETTING.n_q}", 4),
    )
    return Table(columns, tuple(rows), groups)


def runs_table(records: Sequence[BenchRecord]) -> Table:
    """Extra metrics, one row per run (paper method order, plain before +FA)."""
    columns = (
        "method",
        "FA",
        "encoder GT@0.90 (%)",
        "decoder GT@0.90 (%)",
        "anchored-subset decoder MIP",
        "random-dictionary MIP",
        "MCC (decoder)",
        "uniqueness",
        "L0",
        "FVU",
        "dead (%)",
        "steps",
        "samples/s",
        "wall (s)",
        "run dir",
    )
    rows = []
    for record in sorted_records(records):
        rows.append(
            (
                record.method,
                "yes" if record.anchored else "no",
                percent(record.gt_recovery_enc_90),
                percent(record.gt_recovery_dec_90),
                fraction(record.anchored_mip_dec),
                fraction(record.mip_chance),
                fraction(record.mcc),
                fraction(record.uniqueness),
                fraction(record.l0, 2),
                fraction(record.fvu, 4),
                percent(record.dead_fraction),
                fraction(record.steps, 0),
                fraction(record.samples_per_s, 0),
                fraction(record.wall_s, 1),
                record.run_dir or MISSING,
            )
        )
    return Table(columns, tuple(rows))


def sweep_table(records: Sequence[BenchRecord], table1_records: Sequence[BenchRecord] = ()) -> Table:
    """One row per (method, sparsity coefficient): the sweep runs plus the plain Table-1 runs of the same methods."""
    methods = {r.method for r in records}
    main = [r for r in table1_records if r.method in methods and not r.anchored]
    rows = []
    for record in sorted([*records, *main], key=lambda r: (method_sort_key(r.method), r.sparsity_coefficient)):
        star = "*" if any(record is m for m in main) else ""
        rows.append(
            (
                record.method,
                f"{record.sparsity_coefficient:g}{star}",
                fraction(record.l0, 2),
                fraction(record.fvu, 4),
                percent(record.dead_fraction),
                percent(record.gt_recovery_dec),
                percent(record.gt_recovery_dec_90),
                fraction(record.mip_dec),
                fraction(record.mip_enc),
                fraction(record.mip_chance),
            )
        )
    columns = (
        "method",
        "coefficient",
        "L0",
        "FVU",
        "dead (%)",
        "decoder GT@0.95 (%)",
        "decoder GT@0.90 (%)",
        "decoder MIP",
        "encoder MIP",
        "random-dictionary MIP",
    )
    return Table(columns, tuple(rows))
