"""Static report.html of a reproduction folder and its summary (no subprocess)."""

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from dictlab.report.reproduction_html import report_summary, write_reproduction_report
from report_fixtures import CONFIG, key_values, make_reproduction, parse, render


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
