"""Tables from bench records: results.md (markdown), a console table, and the shared table data behind both.

A record is one bench run as a plain dict (see `dictlab bench`): `method`, `anchored`, fractions such as
`gt_recovery_dec` / `mip_enc` in [0, 1], and run statistics (`l0`, `fvu`, `steps`, ...). Missing runs or
missing fields render as "–".
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

from dictlab.report.paper_tables import (
    METHOD_ORDER,
    PAPER_TABLE1,
    PAPER_TABLE1_NOTE,
    PAPER_TABLE1_SETTING,
    PAPER_TABLE1_ZERO_FOOTNOTE,
)

MISSING = "–"
RunKey = tuple[str, bool]


@dataclass(frozen=True)
class Table:
    """A rendered table: header labels, rows of cell strings, optional header groups (label, column span)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    column_groups: tuple[tuple[str, int], ...] = ()


def validate_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Check every record has a str `method` and a bool `anchored`, with no (method, anchored) run twice."""
    if isinstance(records, Mapping | str) or not isinstance(records, Sequence):
        raise ValueError(f"records must be a list of dicts, got {type(records).__name__}")
    seen: set[RunKey] = set()
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"records[{position}] must be a dict, got {type(record).__name__}")
        method = record.get("method")
        if not isinstance(method, str) or not method:
            raise ValueError(f"records[{position}] needs a non-empty str 'method', got {method!r}")
        anchored = record.get("anchored")
        if not isinstance(anchored, bool):
            raise ValueError(f"records[{position}] ({method}) needs a bool 'anchored', got {anchored!r}")
        key = (method, anchored)
        if key in seen:
            raise ValueError(f"records hold run {run_label(key)} twice; one record per (method, anchored)")
        seen.add(key)
    return list(records)


def run_label(key: RunKey) -> str:
    """'topk' or 'topk +FA'."""
    method, anchored = key
    return f"{method} +FA" if anchored else method


def method_sort_key(method: str) -> tuple[int, str]:
    """Paper order first, unknown methods after it alphabetically."""
    if method in METHOD_ORDER:
        return (METHOD_ORDER.index(method), method)
    return (len(METHOD_ORDER), method)


def sorted_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Validated records in paper method order, plain before +FA."""
    return sorted(validate_records(records), key=lambda r: (method_sort_key(r["method"]), r["anchored"]))


def methods_in_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """All paper methods, then any other method present in `records`."""
    extra = sorted({r["method"] for r in records} - set(METHOD_ORDER))
    return [*METHOD_ORDER, *extra]


def missing_runs(records: Sequence[Mapping[str, Any]]) -> list[RunKey]:
    """The (method, anchored) runs of the full 7 × {plain, +FA} grid that `records` lacks."""
    present = {(r["method"], r["anchored"]) for r in validate_records(records)}
    return [(m, a) for m in METHOD_ORDER for a in (False, True) if (m, a) not in present]


def runs_summary(records: Sequence[Mapping[str, Any]]) -> list[str]:
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


def _number(record: Mapping[str, Any] | None, field: str) -> float | None:
    if record is None:
        return None
    value = record.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(
            f"run {run_label((record['method'], record['anchored']))}: field '{field}' must be a number, "
            f"got {type(value).__name__}"
        )
    return float(value)


def format_number(value: float | None, digits: int, *, scale: float = 1.0) -> str:
    """`value * scale` with `digits` decimals; None → '–'; NaN/Inf spelled out."""
    if value is None:
        return MISSING
    if not math.isfinite(value):
        return str(value)
    return f"{value * scale:.{digits}f}"


def percent(record: Mapping[str, Any] | None, field: str) -> str:
    """A [0, 1] fraction as a percentage with 1 decimal."""
    return format_number(_number(record, field), 1, scale=100.0)


def fraction(record: Mapping[str, Any] | None, field: str, digits: int = 3) -> str:
    """A number with `digits` decimals (MIP, MCC, ...)."""
    return format_number(_number(record, field), digits)


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


def table1(records: Sequence[Mapping[str, Any]]) -> Table:
    """Table-1-style: ours (decoder, encoder; plain and +FA) beside the paper's encoder-row numbers."""
    by_run = {(r["method"], r["anchored"]): r for r in validate_records(records)}
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
                percent(plain, "gt_recovery_dec"),
                fraction(plain, "mip_dec"),
                percent(anchored, "gt_recovery_dec"),
                fraction(anchored, "mip_dec"),
                percent(plain, "gt_recovery_enc"),
                fraction(plain, "mip_enc"),
                percent(anchored, "gt_recovery_enc"),
                fraction(anchored, "mip_enc"),
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


def runs_table(records: Sequence[Mapping[str, Any]]) -> Table:
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
        run_dir = record.get("run_dir")
        rows.append(
            (
                record["method"],
                "yes" if record["anchored"] else "no",
                percent(record, "gt_recovery_enc_90"),
                percent(record, "gt_recovery_dec_90"),
                fraction(record, "anchored_mip_dec"),
                fraction(record, "mip_chance"),
                fraction(record, "mcc"),
                fraction(record, "uniqueness"),
                fraction(record, "l0", 2),
                fraction(record, "fvu", 4),
                percent(record, "dead_fraction"),
                fraction(record, "steps", 0),
                fraction(record, "samples_per_s", 0),
                fraction(record, "wall_s", 1),
                str(run_dir) if run_dir else MISSING,
            )
        )
    return Table(columns, tuple(rows))


def sweep_table(records: Sequence[Mapping[str, Any]], table1_records: Sequence[Mapping[str, Any]] = ()) -> Table:
    """One row per (method, sparsity coefficient): the sweep runs plus the plain Table-1 runs of the same methods."""
    methods = {r["method"] for r in records}
    main = [r for r in table1_records if r["method"] in methods and not r["anchored"]]
    rows = []
    for record in sorted([*records, *main], key=lambda r: (method_sort_key(r["method"]), r["sparsity_coefficient"])):
        star = "*" if record in main else ""
        rows.append(
            (
                record["method"],
                f"{record['sparsity_coefficient']:g}{star}",
                fraction(record, "l0", 2),
                fraction(record, "fvu", 4),
                percent(record, "dead_fraction"),
                percent(record, "gt_recovery_dec"),
                percent(record, "gt_recovery_dec_90"),
                fraction(record, "mip_dec"),
                fraction(record, "mip_enc"),
                fraction(record, "mip_chance"),
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


def _markdown_cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|").replace("*", "\\*")


def markdown_table(table: Table) -> str:
    """GitHub-flavoured markdown for `table` (header groups are not representable and are left out)."""
    lines = [
        "| " + " | ".join(_markdown_cell(c) for c in table.columns) + " |",
        "|" + "|".join("---" for _ in table.columns) + "|",
    ]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def config_json(config: Mapping[str, Any]) -> str:
    """`config` as indented, key-sorted JSON (non-JSON values via str())."""
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a dict, got {type(config).__name__}")
    return json.dumps(config, indent=2, sort_keys=True, default=str)


def results_markdown(
    records: Sequence[Mapping[str, Any]],
    *,
    preset: str,
    config: Mapping[str, Any],
    notes: Sequence[str],
    command: str | None = None,
    sweep_records: Sequence[Mapping[str, Any]] = (),
) -> str:
    """results.md: title, preset/command line, Table-1 comparison, per-run metrics, the sparsity sweep (when
    ``sweep_records`` are given), notes, config as JSON."""
    records = validate_records(records)
    if isinstance(notes, str):
        raise ValueError("notes must be a list of strings, not a single string")
    out = [f"# dictlab bench results: preset `{preset}`", ""]
    out.append(f"Preset: `{preset}`" + (f" · command: `{command}`" if command else ""))
    out += ["", *runs_summary(records)]
    out += ["", f"## {TABLE1_TITLE}", "", TABLE1_INTRO]
    out += ["", markdown_table(table1(records)), "", f"\\* paper: {PAPER_TABLE1_ZERO_FOOTNOTE}", ""]
    out += [f"## {RUNS_TABLE_TITLE}", "", RUNS_TABLE_INTRO]
    out += ["", markdown_table(runs_table(records)), ""]
    if sweep_records:
        out += [f"## {SWEEP_TITLE}", "", SWEEP_INTRO, "", markdown_table(sweep_table(sweep_records, records)), ""]
    out += ["## Notes", ""]
    if notes:
        out += ["- " + str(note).replace("\n", "\n  ") for note in notes]
    else:
        out.append("- (none)")
    out += ["", "## Config", "", "```json", config_json(config), "```", ""]
    return "\n".join(out)


CONSOLE_COLUMNS: tuple[tuple[str, int], ...] = (
    ("method", 11),
    ("FA", 3),
    ("dec GT%", 7),
    ("dec MIP", 7),
    ("enc GT%", 7),
    ("enc MIP", 7),
    ("L0", 7),
    ("FVU", 7),
    ("dead%", 6),
    ("samples/s", 9),
)


def console_table(records: Sequence[Mapping[str, Any]]) -> str:
    """Fixed-width plain-text table: a header line, a rule, then exactly one line per record."""
    lines = []
    header = [name.ljust(width) if i < 2 else name.rjust(width) for i, (name, width) in enumerate(CONSOLE_COLUMNS)]
    lines.append("  ".join(header).rstrip())
    lines.append("  ".join("-" * width for _, width in CONSOLE_COLUMNS))
    for record in sorted_records(records):
        cells = (
            record["method"],
            "yes" if record["anchored"] else "no",
            percent(record, "gt_recovery_dec"),
            fraction(record, "mip_dec"),
            percent(record, "gt_recovery_enc"),
            fraction(record, "mip_enc"),
            fraction(record, "l0", 2),
            fraction(record, "fvu", 4),
            percent(record, "dead_fraction"),
            fraction(record, "samples_per_s", 0),
        )
        padded = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, (_, width)) in enumerate(zip(cells, CONSOLE_COLUMNS, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)
