"""report.html of a ``dictlab reproduce`` folder: results.md rendered, figures, configuration, environment; and a
summary of a finished run folder (claims held / failed / without verdict, seconds) for the index page."""

import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import markdown

from dictlab.files.atomic import atomic_write_text
from dictlab.files.json_files import MAX_JSON_BYTES, parse_json
from dictlab.report.html import REPORT_FILENAME, environment_info, figure_src, key_value_table, page

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
FIGURES_DIR = "figures"
MARKDOWN_EXTENSIONS = ("tables", "fenced_code")

_EXTRA_CSS = """
.results td { text-align: left; }
code { background: #f3f3f5; padding: 0 0.2rem; border-radius: 3px; font-size: 0.9em; }
"""


def markdown_to_html(text: str) -> str:
    """GitHub-style markdown (headings, paragraphs, pipe tables, code, emphasis) as HTML; tables scroll sideways.

    Raw HTML in ``text`` is shown as text, never passed through: results.md of a folder is not trusted markup.
    """
    converter = markdown.Markdown(extensions=list(MARKDOWN_EXTENSIONS), output_format="html")
    converter.preprocessors.deregister("html_block")
    converter.inlinePatterns.deregister("html")
    body = re.sub(r'(href|src)="\s*(javascript|vbscript|data):', r'\1="#', converter.convert(text), flags=re.IGNORECASE)
    return body.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")


def first_paragraph_html(results_md: str) -> str:
    """The first paragraph of `results_md` as inline HTML (without the <p>), or '' when it has none."""
    match = re.search(r"<p>(.*?)</p>", markdown_to_html(results_md), flags=re.DOTALL)
    return match.group(1).strip() if match else ""


def write_reproduction_report(
    out: Path, name: str, results_md: str, config: Mapping[str, Any], seed: int | None, device: str = "cpu"
) -> Path:
    """Write `out`/report.html for the reproduction `name` and return its path.

    The page (inline CSS, no JavaScript, no external resources) holds `results_md` rendered to HTML (an <h1> with
    `name` is added only when the markdown does not open with a level-1 heading), every ``out/figures/*.png``
    (sorted, relative links), `config` as a key/value table (nested values as JSON) and `environment_info(device,
    seed=seed)`. Written atomically.
    """
    out = Path(out)
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    if not isinstance(results_md, str):
        raise ValueError(f"results_md must be the markdown text, got {type(results_md).__name__}")
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping, got {type(config).__name__}")
    environment = environment_info(device, seed=seed)
    rendered = markdown_to_html(results_md)
    esc = html.escape

    body = [] if rendered.lstrip().startswith("<h1") else [f"<h1>{esc(name)}</h1>"]
    body.append(f'<div class="results">\n{rendered}\n</div>')
    figures = sorted((out / FIGURES_DIR).glob("*.png")) if (out / FIGURES_DIR).is_dir() else []
    if figures:
        body.append("<h2>Figures</h2>")
        for figure in figures:
            caption = figure.stem.replace("_", " ")
            body.append(
                f'<figure><img src="{esc(figure_src(figure, out), quote=True)}" alt="{esc(caption, quote=True)}">'
                f"<figcaption>{esc(caption)} ({esc(figure.name)})</figcaption></figure>"
            )
    body += ["<h2>Configuration</h2>", key_value_table(config), "<h2>Environment</h2>", key_value_table(environment)]

    path = out / REPORT_FILENAME
    atomic_write_text(path, page(name, body, _EXTRA_CSS))
    return path


def _total_seconds(seconds: Any) -> float | None:
    if isinstance(seconds, bool):
        return None
    if isinstance(seconds, int | float):
        return float(seconds)
    if isinstance(seconds, Mapping):
        if isinstance(seconds.get("total"), int | float):
            return float(seconds["total"])
        values = [v for v in seconds.values() if isinstance(v, int | float) and not isinstance(v, bool)]
        return float(sum(values)) if values else None
    return None


def read_results_json(out: Path) -> Any:
    """The parsed ``out/results.json``; ValueError naming the folder when it is missing or not valid JSON."""
    out = Path(out)
    if not out.is_dir():
        raise ValueError(f"{out} is not a folder (expected a dictlab reproduce or bench output folder)")
    path = out / RESULTS_JSON
    if not path.is_file():
        raise ValueError(f"{out} has no {RESULTS_JSON} (not a finished dictlab reproduce or bench output folder)")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ValueError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not readable JSON: {err}") from err
    return parse_json(text, str(path))


def report_summary(out: Path) -> dict[str, Any]:
    """Summary of the run folder `out` from its results.json.

    Keys: ``name`` (results.json's ``name`` when it has one, else the folder name), ``kind`` ('reproduction', or
    'bench' when results.json is a list of run records), ``runs`` (bench records; None for a reproduction),
    ``claims``, ``held``, ``failed``, ``no_verdict`` (claims by verdict), ``seconds`` (``seconds.total``, else the sum
    of ``seconds``; None when absent) and ``has_report`` (whether report.html exists). ValueError when results.json
    is missing, unreadable or neither an object nor a list.
    """
    out = Path(out)
    data = read_results_json(out)
    summary: dict[str, Any] = {
        "name": out.resolve().name,
        "kind": "reproduction",
        "runs": None,
        "claims": 0,
        "held": 0,
        "failed": 0,
        "no_verdict": 0,
        "seconds": None,
        "has_report": (out / REPORT_FILENAME).is_file(),
    }
    if isinstance(data, list):
        summary.update(kind="bench", runs=len(data))
        return summary
    if not isinstance(data, dict):
        raise ValueError(f"{out / RESULTS_JSON} holds a {type(data).__name__}, expected an object or a list")
    if isinstance(data.get("name"), str) and data["name"]:
        summary["name"] = data["name"]
    claims = data.get("claims") or []
    if not isinstance(claims, list):
        raise ValueError(f"{out / RESULTS_JSON}: 'claims' must be a list, got {type(claims).__name__}")
    verdicts = [c.get("holds") if isinstance(c, dict) else None for c in claims]
    summary.update(
        claims=len(claims),
        held=sum(v is True for v in verdicts),
        failed=sum(v is False for v in verdicts),
        no_verdict=sum(v is not True and v is not False for v in verdicts),
        seconds=_total_seconds(data.get("seconds")),
    )
    return summary
