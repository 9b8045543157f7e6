"""Static report.html of a reproduction folder and the index page over several run folders (no subprocess)."""

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from dictlab.report.index_html import write_report_index
from dictlab.report.reproduction_html import report_summary, write_reproduction_report

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


def test_reproduction_report_renders_markdown_figures_config_and_environment(tmp_path: Path) -> None:
    out = make_reproduction(tmp_path)
    path = render(out)
    assert path == out / "report.html"
    text = path.read_text(encoding="utf-8")
    page = parse(path)

    assert page.title == "fake-repro"
    assert page.headings[:2] == ["Fake reproduction: a title", "Theory vs measurement"]
    assert "<code>inline code</code>" in text and "<strong>bold</strong>" in text
    assert "script" not in page.tags and "<script" not in text.lower()
    assert "link" not in page.tags and "http://" not in text and "https://" not in text

    claims = page.tables[0]
    assert claims[0] == ["claim", "expected", "measured", "agrees"]
    assert claims[1] == ["gap shrinks", "2.998 → 0.020", "2.87 → 0.197", "yes"]
    assert claims[2] == ["bound a | b holds", "P_∞ ≤ P_K", "12.67", "NO"]

    assert page.imgs == [{"src": "figures/gap_curve.png", "alt": "gap curve"}]
    assert (out / unquote(page.imgs[0]["src"] or "")).is_file()
    assert "figcaption" in page.tags

    assert len(page.tables) == 3
    config = key_values(page.tables[1])
    assert config["seed"] == "3" and config["note"] == "plain text"
    assert json.loads(config["sweeps"]) == CONFIG["sweeps"]
    environment = key_values(page.tables[2])
    assert environment["device"] == "cpu" and environment["seed"] == "3"
    assert {"python", "torch", "numpy", "dictlab", "platform"} <= environment.keys()
    assert page.headings[-3:] == ["Figures", "Configuration", "Environment"]
    assert not list(out.glob(".report.html.*")), "atomic write leaves no temporary file"


def test_reproduction_report_without_figures_or_title_heading(tmp_path: Path) -> None:
    out = tmp_path / "bare"
    out.mkdir()
    path = write_reproduction_report(out, "bare-run", "Only a paragraph.", {}, None)
    page = parse(path)
    assert page.headings == ["bare-run", "Configuration", "Environment"]
    assert page.imgs == []
    assert "seed" not in key_values(page.tables[-1])
    with pytest.raises(ValueError, match="config must be a mapping"):
        write_reproduction_report(out, "bare-run", "x", [("a", 1)], None)  # type: ignore[arg-type]


def test_report_summary_counts_claims_and_seconds(tmp_path: Path) -> None:
    out = make_reproduction(tmp_path, holds=(True, True, False, None))
    summary: dict[str, Any] = report_summary(out)
    assert summary == {
        "name": "fake-repro",
        "kind": "reproduction",
        "runs": None,
        "claims": 4,
        "held": 2,
        "failed": 1,
        "no_verdict": 1,
        "seconds": 12.5,
        "has_report": False,
    }
    render(out)
    assert report_summary(out)["has_report"] is True

    named = tmp_path / "named"
    named.mkdir()
    (named / "results.json").write_text(json.dumps({"name": "wide-limit", "seconds": {"a": 1, "b": 2.5}}))
    assert report_summary(named) | {"has_report": None} == {
        "name": "wide-limit",
        "kind": "reproduction",
        "runs": None,
        "claims": 0,
        "held": 0,
        "failed": 0,
        "no_verdict": 0,
        "seconds": 3.5,
        "has_report": None,
    }


def make_bench(root: Path) -> Path:
    """A bench folder as `dictlab bench` leaves it: results.json is a list of run records."""
    out = root / "bench"
    out.mkdir()
    records = [{"method": "relu", "anchored": False}, {"method": "relu", "anchored": True}, {"method": "topk"}]
    (out / "results.json").write_text(json.dumps(records), encoding="utf-8")
    (out / "results.md").write_text("# dictlab bench results\n\nPreset: `tiny` · 3 runs.\n", encoding="utf-8")
    (out / "report.html").write_text("<!DOCTYPE html><title>bench</title>", encoding="utf-8")
    return out


def test_index_lists_runs_with_relative_links(tmp_path: Path) -> None:
    first = make_reproduction(tmp_path / "runs", "alpha", holds=(True, False, None))
    second = make_reproduction(tmp_path / "runs", "beta", holds=(True,))
    bench = make_bench(tmp_path / "runs")
    render(first, "alpha")
    render(second, "beta")
    out = tmp_path / "site"
    out.mkdir()

    path = write_report_index([first, second, bench], out)
    assert path == out / "index.html"
    text = path.read_text(encoding="utf-8")
    page = parse(path)
    assert "<script" not in text.lower()

    header, *rows = page.tables[0]
    assert header[:2] == ["run", "kind"]
    assert len(rows) == 3
    column = {name: i for i, name in enumerate(header)}
    alpha, beta, bench_row = rows
    assert alpha[column["run"]] == "alpha" and alpha[column["kind"]] == "reproduction"
    assert [alpha[column[c]] for c in ("claims", "hold", "fail", "no verdict")] == ["3", "1", "1", "1"]
    assert [beta[column[c]] for c in ("claims", "hold", "fail", "no verdict")] == ["1", "1", "0", "0"]
    assert alpha[column["seconds"]] == "12.5"
    assert alpha[column["summary"]] == "First paragraph with inline code and bold text."
    assert bench_row[column["kind"]] == "bench" and bench_row[column["bench runs"]] == "3"
    assert bench_row[column["summary"]] == "Preset: tiny · 3 runs."

    assert page.links == ["../runs/alpha/report.html", "../runs/beta/report.html", "../runs/bench/report.html"]
    for link in page.links:
        assert not link.startswith("/")
        assert (out / unquote(link)).resolve().is_file()


def test_index_rejects_folder_without_results_json(tmp_path: Path) -> None:
    good = make_reproduction(tmp_path)
    empty = tmp_path / "not-a-run"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"not-a-run.*results\.json"):
        write_report_index([good, empty], tmp_path)
    assert not (tmp_path / "index.html").exists()
    with pytest.raises(ValueError, match="missing-folder"):
        write_report_index([tmp_path / "missing-folder"], tmp_path)
    with pytest.raises(ValueError, match="no run folders"):
        write_report_index([], tmp_path)
