"""Static, self-contained HTML (inline CSS, no JavaScript or external resources): the page shell, tables,
figures, key/value blocks, and the environment a result was measured in."""

import html
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPORT_FILENAME = "report.html"


@dataclass(frozen=True)
class Table:
    """A rendered table: header labels, rows of cell strings, optional header groups (label, column span)."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    column_groups: tuple[tuple[str, int], ...] = ()


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


def page(title: str, body: list[str], extra_css: str = "") -> str:
    """A complete static HTML document: `title` (escaped), the report CSS plus `extra_css`, and `body` lines."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{REPORT_CSS}{extra_css}</style></head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )
