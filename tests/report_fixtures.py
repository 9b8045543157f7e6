"""Shared builders of the report tests (tests/report/): a finished reproduction folder, its rendered report.html
and an HTML parser for the pages."""

import json
from html.parser import HTMLParser
from pathlib import Path

from dictlab.report.reproduction_html import write_reproduction_report

RESULTS_MD = """# Fake reproduction: a title

First paragraph with `inline code` and **bold** text.

## Theory vs measurement

| claim | expected | measured | agrees |
|---|---|---|---|
| gap shrinks | 2.998 → 0.020 | 2.87 → 0.197 | yes |
| bound a \\| b holds | P_∞ ≤ P_K | 12.67 | **NO** |

Closing paragraph.
"""

CONFIG = {"seed": 3, "lam": 0.3, "sweeps": [{"dim": 5, "widths": [4, 8]}], "note": "plain text"}


def make_reproduction(root: Path, name: str = "fake-repro", *, holds: tuple[bool | None, ...] = (True, False)) -> Path:
    """A finished reproduction folder: results.json (config, claims, seconds), results.md and a real PNG figure."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    out = root / name
    (out / "figures").mkdir(parents=True)
    claims = [
        {"claim": f"claim {i}", "expected": "x", "measured": "y", "holds": verdict} for i, verdict in enumerate(holds)
    ]
    results = {"config": CONFIG, "claims": claims, "seconds": {"solve": 1.5, "total": 12.5}}
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (out / "results.md").write_text(RESULTS_MD, encoding="utf-8")
    fig = Figure(figsize=(3, 2))
    ax = fig.subplots()
    ax.plot([0, 1, 2], [0, 1, 4], color="tab:blue", linewidth=4)
    ax.set_title("curve")
    fig.savefig(out / "figures" / "gap_curve.png", dpi=60)
    return out


def render(out: Path, name: str = "fake-repro") -> Path:
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return write_reproduction_report(out, name, (out / "results.md").read_text(encoding="utf-8"), results["config"], 3)


class PageParser(HTMLParser):
    """Tables (rows of cell texts), img/a attributes, every start tag and the text of h1/h2/title."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.imgs: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.headings: list[str] = []
        self.title = ""
        self._cell: list[str] | None = None
        self._heading: list[str] | None = None
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.imgs.append(dict(attrs))
        elif tag == "a":
            self.links.append(dict(attrs)["href"] or "")
        elif tag in ("h1", "h2"):
            self._heading = []
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag in ("h1", "h2") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._in_title:
            self.title += data


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def key_values(table: list[list[str]]) -> dict[str, str]:
    return {row[0]: row[1] for row in table if len(row) == 2}
