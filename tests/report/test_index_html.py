"""The index page over several run folders (reproductions and a bench), with relative links (no subprocess)."""

import json
from pathlib import Path
from urllib.parse import unquote

import pytest

from dictlab.report.index_html import write_report_index
from report_fixtures import make_reproduction, parse, render


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
