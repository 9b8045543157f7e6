"""A self-contained static report.html (inline CSS, no JavaScript or external resources); environment info."""

import html
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from dictlab.report.paper_tables import PAPER_TABLE1_ZERO_FOOTNOTE
from dictlab.report.tables import (
    RUNS_TABLE_INTRO,
    RUNS_TABLE_TITLE,
    SWEEP_INTRO,
    SWEEP_TITLE,
    TABLE1_INTRO,
    TABLE1_TITLE,
    Table,
    config_json,
    runs_summary,
    runs_table,
    sweep_table,
    table1,
    validate_records,
)

REPORT_FILENAME = "report.html"

REPORT_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; }
th { background: #f3f3f5; } td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
th.group { background: #e6e9f0; text-align: center; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; font-size: 0.8rem; }
figure { margin: 1rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #555; }
.note { font-size: 0.9rem; color: #444; }
"""


def environment_info(device: str, *, seed: int | None = None) -> dict[str, Any]:
    """Versions (python, torch, numpy, dictlab), platform, device, torch threads, CPU count, and the seed."""
    if not isinstance(device, str) or not device:
        raise ValueError(f"device must be a non-empty str such as 'cpu' or 'cuda', got {device!r}")
    import numpy  # imported here so that building a report does not load torch
    import torch

    try:
        dictlab_version = importlib.metadata.version("dictlab")
    except importlib.metadata.PackageNotFoundError:
        dictlab_version = "unknown (not installed)"
    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "dictlab": dictlab_version,
        "platform": platform.platform(),
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
    if seed is not None:
        info["seed"] = seed
    return info


def html_table(table: Table) -> str:
    """`table` as an HTML <table> (header groups become a first header row with colspans), text escaped."""
    head = []
    if table.column_groups:
        cells = "".join(
            f'<th class="group" colspan="{span}">{html.escape(label)}</th>' for label, span in table.column_groups
        )
        head.append(f"<tr>{cells}</tr>")
    head.append("<tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in table.columns) + "</tr>")
    body = ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows]
    return (
        '<div class="scroll"><table>\n<thead>'
        + "\n".join(head)
        + "</thead>\n<tbody>\n"
        + "\n".join(body)
        + "\n</tbody></table></div>"
    )


def notes_from_markdown(results_md: str) -> list[str]:
    """The bullet items of the '## Notes' section of a results.md (as written by `results_markdown`)."""
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


def figure_src(figure: str | Path, out_dir: Path) -> str:
    figure = Path(figure)
    candidates = [figure] if figure.is_absolute() else [out_dir / figure, Path.cwd() / figure]
    for candidate in candidates:
        if candidate.is_file():
            relative = os.path.relpath(candidate.resolve(), out_dir.resolve())
            return quote(Path(relative).as_posix())
    raise ValueError(f"figure {figure} does not exist (looked relative to {out_dir} and the working directory)")


def key_value_table(values: Mapping[str, Any]) -> str:
    rows = []
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(text)}</td></tr>")
    return '<div class="scroll"><table>\n' + "\n".join(rows) + "\n</table></div>"


def write_report_html(
    out_dir: str | Path,
    *,
    title: str,
    records: Sequence[Mapping[str, Any]],
    results_md: str | None,
    figures: Sequence[str | Path],
    config: Mapping[str, Any],
    environment: Mapping[str, Any],
    notes: Sequence[str] | None = None,
    sweep_records: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Write `out_dir`/report.html and return its path.

    Tables are rendered from `records`; figures become <img> with paths relative to `out_dir` (absolute paths,
    or paths relative to `out_dir` or to the working directory; a missing file raises ValueError). `notes`
    default to the bullets of the '## Notes' section of `results_md`; the markdown source itself is included
    in a collapsed <details> block.
    """
    out_dir = Path(out_dir)
    records = validate_records(records)
    if not isinstance(environment, Mapping):
        raise ValueError(f"environment must be a dict, got {type(environment).__name__}")
    if notes is None:
        notes = notes_from_markdown(results_md) if results_md else []
    elif isinstance(notes, str):
        raise ValueError("notes must be a list of strings, not a single string")
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_srcs = [(Path(f).stem.replace("_", " "), figure_src(f, out_dir)) for f in figures]

    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{REPORT_CSS}</style></head>",
        "<body>",
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
        parts += [
            f"<h2>{esc(SWEEP_TITLE)}</h2>",
            f'<p class="note">{esc(SWEEP_INTRO)}</p>',
            html_table(sweep_table(sweep_records, records)),
        ]
    if figure_srcs:
        parts.append("<h2>Figures</h2>")
        for caption, src in figure_srcs:
            parts.append(
                f'<figure><img src="{esc(src, quote=True)}" alt="{esc(caption, quote=True)}">'
                f"<figcaption>{esc(caption)}</figcaption></figure>"
            )
    parts.append("<h2>Notes</h2>")
    if notes:
        parts.append("<ul>" + "".join(f"<li>{esc(str(n))}</li>" for n in notes) + "</ul>")
    else:
        parts.append("<p>(none)</p>")
    parts += [
        "<h2>Configuration</h2>",
        f"<pre>{esc(config_json(config))}</pre>",
        "<h2>Environment</h2>",
        key_value_table(environment),
    ]
    if results_md:
        parts += [
            "<h2>results.md</h2>",
            f"<details><summary>markdown source</summary><pre>{esc(results_md)}</pre></details>",
        ]
    parts += ["</body>", "</html>", ""]
    path = out_dir / REPORT_FILENAME
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
