"""index.html: one static page listing finished ``dictlab reproduce`` and ``dictlab bench`` folders."""

import html
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from dictlab.files.atomic import atomic_write_text
from dictlab.report.html import REPORT_FILENAME, page
from dictlab.report.reproduction_html import RESULTS_MD, first_paragraph_html, report_summary

INDEX_FILENAME = "index.html"
INDEX_TITLE = "dictlab runs"

_INDEX_CSS = """
td.text { text-align: left; min-width: 20rem; }
td.fail { color: #b00020; font-weight: 600; }
"""

_HEADERS = ("run", "kind", "claims", "hold", "fail", "no verdict", "bench runs", "seconds", "summary")


def _relative_link(target: Path, out: Path) -> str:
    return quote(Path(os.path.relpath(target.resolve(), out.resolve())).as_posix())


def _row(run_dir: Path, out: Path) -> str:
    summary = report_summary(run_dir)
    esc = html.escape
    name = esc(summary["name"])
    if summary["has_report"]:
        link = esc(_relative_link(run_dir / REPORT_FILENAME, out), quote=True)
        name_cell = f'<a href="{link}">{name}</a>'
    else:
        name_cell = f'{name} <span class="note">(no {REPORT_FILENAME})</span>'
    results_md = run_dir / RESULTS_MD
    paragraph = first_paragraph_html(results_md.read_text(encoding="utf-8")) if results_md.is_file() else ""
    is_bench = summary["kind"] == "bench"
    seconds = "–" if summary["seconds"] is None else f"{summary['seconds']:.1f}"
    failed_class = ' class="fail"' if summary["failed"] else ""
    cells = [
        f"<td>{name_cell}</td>",
        f"<td>{esc(summary['kind'])}</td>",
        f"<td>{'–' if is_bench else summary['claims']}</td>",
        f"<td>{'–' if is_bench else summary['held']}</td>",
        f"<td{failed_class}>{'–' if is_bench else summary['failed']}</td>",
        f"<td>{'–' if is_bench else summary['no_verdict']}</td>",
        f"<td>{summary['runs'] if is_bench else '–'}</td>",
        f"<td>{seconds}</td>",
        f'<td class="text">{paragraph}</td>',  # rendered with raw HTML escaped (markdown_to_html)
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def write_report_index(dirs: Sequence[Path], out: Path) -> Path:
    """Write `out`/index.html listing the run folders `dirs` and return its path.

    Each folder must hold results.json (a reproduction's object with claims, or a bench's list of run records);
    otherwise ValueError naming the folder. One row per folder: a link to its report.html relative to `out`,
    claims held / failed / without verdict (reproductions) or the number of runs (bench), total seconds and the
    first paragraph of its results.md. Static (inline CSS, no JavaScript), written atomically.
    """
    if isinstance(dirs, str | Path):
        raise ValueError("dirs must be a list of run folders, not a single path")
    run_dirs = [Path(d) for d in dirs]
    if not run_dirs:
        raise ValueError("no run folders given for the index")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is an existing file, not a folder")
    rows = [_row(d, out) for d in run_dirs]  # validates every folder before anything is written
    body = [
        f"<h1>{html.escape(INDEX_TITLE)}</h1>",
        f'<p class="note">{len(rows)} run folder(s).</p>',
        '<div class="scroll"><table>',
        "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in _HEADERS) + "</tr></thead>",
        "<tbody>",
        *rows,
        "</tbody></table></div>",
    ]
    path = out / INDEX_FILENAME
    atomic_write_text(path, page(INDEX_TITLE, body, _INDEX_CSS))
    return path
