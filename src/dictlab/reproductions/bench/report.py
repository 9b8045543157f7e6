"""The bench's outputs: results.md, report.html, figures and the console table, from its records."""

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dictlab.files.atomic import atomic_write_text
from dictlab.report.html import REPORT_FILENAME, environment_info, figure_src, html_table, key_value_table, page
from dictlab.report.markdown import markdown_table
from dictlab.reproductions.bench.figures import (
    plot_best_match_histograms,
    plot_recovery_curves,
    plot_training_trajectories,
)
from dictlab.reproductions.bench.notes import bench_notes
from dictlab.reproductions.bench.presets import BenchPreset
from dictlab.reproductions.bench.records import BenchRecord
from dictlab.reproductions.bench.tables import (
    RUNS_TABLE_INTRO,
    RUNS_TABLE_TITLE,
    SWEEP_INTRO,
    SWEEP_TITLE,
    TABLE1_INTRO,
    TABLE1_TITLE,
    fraction,
    percent,
    runs_summary,
    runs_table,
    sorted_records,
    sweep_table,
    table1,
)
from dictlab.reproductions.expected import PAPER_TABLE1_ZERO_FOOTNOTE


def config_json(config: Mapping[str, Any]) -> str:
    """``config`` as indented, key-sorted JSON (non-JSON values via str())."""
    return json.dumps(config, indent=2, sort_keys=True, default=str)


def results_markdown(
    records: Sequence[BenchRecord],
    *,
    preset: str,
    config: Mapping[str, Any],
    notes: Sequence[str],
    command: str | None = None,
    sweep_records: Sequence[BenchRecord] = (),
) -> str:
    """results.md: title, preset/command line, Table-1 comparison, per-run metrics, the sparsity sweep (when
    ``sweep_records`` are given), notes, config as JSON."""
    out = [f"# dictlab bench results: preset `{preset}`", ""]
    out.append(f"Preset: `{preset}`" + (f" · command: `{command}`" if command else ""))
    out += ["", *runs_summary(records)]
    t1 = table1(records)
    out += ["", f"## {TABLE1_TITLE}", "", TABLE1_INTRO]
    out += ["", markdown_table(t1.columns, t1.rows, literal=True), "", f"\\* paper: {PAPER_TABLE1_ZERO_FOOTNOTE}", ""]
    runs = runs_table(records)
    out += [f"## {RUNS_TABLE_TITLE}", "", RUNS_TABLE_INTRO]
    out += ["", markdown_table(runs.columns, runs.rows, literal=True), ""]
    if sweep_records:
        sweep = sweep_table(sweep_records, records)
        out += [f"## {SWEEP_TITLE}", "", SWEEP_INTRO, "", markdown_table(sweep.columns, sweep.rows, literal=True), ""]
    out += ["## Notes", ""]
    if notes:
        out += ["- " + str(note).replace("\n", "\n  ") for note in notes]
    else:
        out.append("- (none)")
    out += ["", "## Config", "", "```json", config_json(config), "```", ""]
    return "\n".join(out)


def notes_from_markdown(results_md: str) -> list[str]:
    """The bullet items of the '## Notes' section of a results.md (as written by :func:`results_markdown`)."""
    notes: list[str] = []
    in_notes = False
    for line in results_md.splitlines():
        if line.startswith("## "):
            in_notes = line.strip() == "## Notes"
            continue
        if not in_notes:
            continue
        if line.startswith("- "):
            notes.append(line[2:])
        elif line.startswith("  ") and notes:
            notes[-1] += "\n" + line[2:]
    return [n for n in notes if n != "(none)"]


def write_report_html(
    out_dir: str | Path,
    *,
    title: str,
    records: Sequence[BenchRecord],
    results_md: str | None,
    figures: Sequence[str | Path],
    config: Mapping[str, Any],
    environment: Mapping[str, Any],
    notes: Sequence[str] | None = None,
    sweep_records: Sequence[BenchRecord] = (),
) -> Path:
    """Write ``out_dir``/report.html and return its path.

    Tables are rendered from ``records``; figures become <img> with paths relative to ``out_dir`` (absolute paths,
    or paths relative to ``out_dir`` or to the working directory; a missing file raises ValueError). ``notes``
    default to the bullets of the '## Notes' section of ``results_md``; the markdown source itself is included
    in a collapsed <details> block.
    """
    out_dir = Path(out_dir)
    if notes is None:
        notes = notes_from_markdown(results_md) if results_md else []
    elif isinstance(notes, str):
        raise ValueError("notes must be a list of strings, not a single string")
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_srcs = [(Path(f).stem.replace("_", " "), figure_src(f, out_dir)) for f in figures]

    esc = html.escape
    body = [
        f"<h1>{esc(title)}</h1>",
        *(f"<p>{esc(line)}</p>" for line in runs_summary(records)),
        f"<h2>{esc(TABLE1_TITLE)}</h2>",
        f'<p class="note">{esc(TABLE1_INTRO)}</p>',
        html_table(table1(records)),
        f'<p class="note">* paper: {esc(PAPER_TABLE1_ZERO_FOOTNOTE)}</p>',
        f"<h2>{esc(RUNS_TABLE_TITLE)}</h2>",
        f'<p class="note">{esc(RUNS_TABLE_INTRO)}</p>',
        html_table(runs_table(records)),
    ]
    if sweep_records:
        body += [
            f"<h2>{esc(SWEEP_TITLE)}</h2>",
            f'<p class="note">{esc(SWEEP_INTRO)}</p>',
            html_table(sweep_table(sweep_records, records)),
        ]
    if figure_srcs:
        body.append("<h2>Figures</h2>")
        for caption, src in figure_srcs:
            body.append(
                f'<figure><img src="{esc(src, quote=True)}" alt="{esc(caption, quote=True)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
    body.append("<h2>Notes</h2>")
    if notes:
        body.append("<ul>" + "".join(f"<li>{esc(str(n))}</li>" for n in notes) + "</ul>")
    else:
        body.append("<p>(none)</p>")
    body += [
        "<h2>Configuration</h2>",
        f"<pre>{esc(config_json(config))}</pre>",
        "<h2>Environment</h2>",
        key_value_table(environment),
    ]
    if results_md:
        body += [
            "<h2>results.md</h2>",
            f"<details><summary>markdown source</summary><pre>{esc(results_md)}</pre></details>",
        ]
    path = out_dir / REPORT_FILENAME
    atomic_write_text(path, page(title, body))
    return path


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


def console_table(records: Sequence[BenchRecord]) -> str:
    """Fixed-width plain-text table: a header line, a rule, then exactly one line per record."""
    lines = []
    header = [name.ljust(width) if i < 2 else name.rjust(width) for i, (name, width) in enumerate(CONSOLE_COLUMNS)]
    lines.append("  ".join(header).rstrip())
    lines.append("  ".join("-" * width for _, width in CONSOLE_COLUMNS))
    for record in sorted_records(records):
        cells = (
            record.method,
            "yes" if record.anchored else "no",
            percent(record.gt_recovery_dec),
            fraction(record.mip_dec),
            percent(record.gt_recovery_enc),
            fraction(record.mip_enc),
            fraction(record.l0, 2),
            fraction(record.fvu, 4),
            percent(record.dead_fraction),
            fraction(record.samples_per_s, 0),
        )
        padded = [
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, (_, width)) in enumerate(zip(cells, CONSOLE_COLUMNS, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def write_bench_report(
    out: Path,
    preset: BenchPreset,
    records: Sequence[BenchRecord],
    sweep: Sequence[BenchRecord],
    preset_name: str,
    device: str,
    interference: dict[str, float],
) -> None:
    """results.md, figures and report.html of a finished bench under ``out``."""
    config = {"preset": preset.model_dump(mode="json"), "achieved_max_interference": interference}
    notes = bench_notes(records, preset, sweep)
    markdown = results_markdown(
        records,
        preset=preset.name,
        config=config,
        notes=notes,
        command=f"dictlab bench --preset {preset_name}",
        sweep_records=sweep,
    )
    atomic_write_text(out / "results.md", markdown)
    figures = [
        plot_recovery_curves(records, out / "figures" / "recovery_curves.png"),
        plot_best_match_histograms(records, out / "figures" / "best_match_histograms.png"),
        plot_training_trajectories(records, out / "figures" / "training_trajectories.png"),
    ]
    write_report_html(
        out,
        title=f"dictlab bench — preset {preset.name}",
        records=records,
        results_md=markdown,
        figures=figures,
        config=config,
        environment=environment_info(device, seed=preset.train.seed),
        notes=notes,
        sweep_records=sweep,
    )
