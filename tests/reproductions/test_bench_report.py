"""The bench's outputs from typed records: results.md, the console table, figures, report.html, the sweep table,
and what malformed records raise."""

import json
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import ValidationError

from dictlab.report import environment_info
from dictlab.reproductions.bench import BenchRecord, read_records
from dictlab.reproductions.bench.figures import plot_best_match_histograms, plot_recovery_curves
from dictlab.reproductions.bench.records import check_unique
from dictlab.reproductions.bench.report import console_table, notes_from_markdown, results_markdown, write_report_html
from dictlab.reproductions.bench.tables import sweep_table
from dictlab.reproductions.expected import METHOD_ORDER

CONFIG = {"preset": "tiny", "seed": 7, "n_q": 160, "lr": 0.001}
NOTES = ["Decoder GT matches the paper's TopK range; encoder rows do not.", "<script>alert('x')</script>"]
CODERS = ("transcoder", "crosscoder")
SPARSITY_COEFFICIENTS = {"relu": 1.0, "jumprelu": 0.1}


def record_fields(method_index: int, method: str, anchored: bool) -> dict[str, Any]:
    """Every BenchRecord field, distinct and hand-checkable: gt_recovery_dec = 0.5 + 0.05 i (+0.01 for FA), etc."""
    generator = torch.Generator().manual_seed(100 * method_index + int(anchored))
    fa = 0.01 if anchored else 0.0
    taus = [0.5 + 0.01 * k for k in range(51)]
    curve_dec = [max(0.0, 1.0 - (t - 0.5) * (1.0 + method_index)) for t in taus]
    curve_enc = [0.5 * v for v in curve_dec]
    gt_recovery_dec = 0.5 + 0.05 * method_index + fa
    mip_dec, mip_enc = 0.9 + 0.002 * method_index + fa, 0.6 + 0.001 * method_index + fa
    return {
        "method": method,
        "anchored": anchored,
        "kind": method if method in CODERS else "sae",
        "activation": "topk" if method in CODERS else method,
        "k": None if method in SPARSITY_COEFFICIENTS else 4,
        "sparsity_coefficient": SPARSITY_COEFFICIENTS.get(method, 0.0),
        "n_anchors": 13 if anchored else 0,
        "gt_recovery_enc": 0.1 + 0.01 * method_index + fa,
        "gt_recovery_dec": gt_recovery_dec,
        "mip_enc": mip_enc,
        "mip_dec": mip_dec,
        "gt_recovery_enc_90": 0.2 + 0.01 * method_index,
        "gt_recovery_dec_90": 0.7 + 0.01 * method_index,
        "anchored_mip_enc": 0.98 if anchored else None,
        "anchored_mip_dec": 0.99 if anchored else None,
        "mip_chance": 0.3 + 0.001 * method_index,
        "l0": 8.0 + method_index,
        "fvu": 0.0321,
        "dead_fraction": 0.125,
        "mcc": 0.8,
        "uniqueness": 0.4,
        "curve_taus": taus,
        "curve_enc": curve_enc,
        "curve_dec": curve_dec,
        "best_cos_enc": (0.3 + 0.4 * torch.rand(60, generator=generator)).tolist(),
        "best_cos_dec": (0.7 + 0.3 * torch.rand(60, generator=generator)).tolist(),
        "steps": 1000,
        "wall_s": 12.34,
        "samples_per_s": 4321.6,
        "eval_s": 0.75,
        "run_dir": f"runs/{method}{'_fa' if anchored else ''}",
        "trajectory": {
            "step": [0, 500, 1000],
            "gt_recovery_dec": [0.0, gt_recovery_dec / 2, gt_recovery_dec],
            "mip_dec": [0.25, (0.25 + mip_dec) / 2, mip_dec],
            "mip_enc": [0.25, (0.25 + mip_enc) / 2, mip_enc],
        },
    }


def make_record(method_index: int, method: str, anchored: bool, **overrides: Any) -> BenchRecord:
    """A complete, validated record with the values of :func:`record_fields` (``overrides`` replace fields)."""
    return BenchRecord.model_validate({**record_fields(method_index, method, anchored), **overrides})


def all_records() -> list[BenchRecord]:
    return [make_record(i, m, a) for i, m in enumerate(METHOD_ORDER) for a in (False, True)]


def partial_records() -> list[BenchRecord]:
    return [r for r in all_records() if r.method != "crosscoder" and (r.method, r.anchored) != ("topk", True)]


def table_rows(markdown: str, first_column: str) -> tuple[list[str], dict[str, list[str]]]:
    """Header cells and rows (keyed by first cell) of the first markdown table whose header starts so."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_column} |"))
    split = lambda line: [c.strip() for c in line.strip().strip("|").split(" | ")]  # noqa: E731
    header = split(lines[start])
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = split(line)
        assert len(cells) == len(header), line
        rows.setdefault(cells[0], cells)
    return header, rows


def test_results_markdown_full_grid() -> None:
    md = results_markdown(all_records(), preset="tiny", config=CONFIG, notes=NOTES, command="dictlab bench tiny")
    assert md.startswith("# ") and "`tiny`" in md and "dictlab bench tiny" in md
    assert "Runs: 14 of 14" in md and "Missing runs" not in md
    header, rows = table_rows(md, "method")
    assert list(rows) == list(METHOD_ORDER)
    col = {name: i for i, name in enumerate(header)}
    for label in (
        "ours decoder GT@0.95 (%)",
        "ours +FA encoder MIP",
        "paper encoder M_GT (%)",
        "paper +FA encoder M_IP",
    ):
        assert label in col
    assert all("encoder" in h or "decoder" in h for h in header[1:])
    topk = rows["topk"]  # method index 2
    assert topk[col["ours decoder GT@0.95 (%)"]] == "60.0"
    assert topk[col["ours +FA decoder GT@0.95 (%)"]] == "61.0"
    assert topk[col["ours decoder MIP"]] == "0.904"
    assert topk[col["ours +FA decoder MIP"]] == "0.914"
    assert topk[col["ours encoder GT@0.95 (%)"]] == "12.0"
    assert topk[col["ours encoder MIP"]] == "0.602"
    assert topk[col["ours +FA encoder MIP"]] == "0.612"
    assert topk[col["paper encoder M_GT (%)"]] == "84.90"
    assert topk[col["paper encoder M_IP"]] == "0.983"
    assert topk[col["paper +FA encoder M_GT (%)"]] == "87.63"
    assert rows["relu"][col["paper encoder M_GT (%)"]] == "0.00\\*"
    assert rows["transcoder"][col["paper +FA encoder M_GT (%)"]] == "25.05"
    assert "ENCODER-row metrics" in md
    # extra metrics table: one row per run, + FA run shows anchored-subset MIP
    header2, _ = table_rows(md, "method | FA")
    run_lines = [line for line in md.splitlines() if re.match(r"\| \w+ \| (yes|no) \|", line)]
    assert len(run_lines) == 14
    fa_topk = next(line for line in run_lines if line.startswith("| topk | yes |"))
    cells = [c.strip() for c in fa_topk.strip("|").split("|")]
    assert cells[header2.index("anchored-subset decoder MIP")] == "0.990"
    assert cells[header2.index("decoder GT@0.90 (%)")] == "72.0"
    assert cells[header2.index("dead (%)")] == "12.5"
    assert cells[header2.index("samples/s")] == "4322"
    for note in NOTES:
        assert f"- {note}" in md
    config_block = md.split("```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(config_block) == CONFIG


def test_results_markdown_partial_run_renders_dashes() -> None:
    md = results_markdown(partial_records(), preset="tiny", config=CONFIG, notes=[])
    assert "Runs: 11 of 14" in md and "crosscoder +FA" in md and "topk +FA" in md
    header, rows = table_rows(md, "method")
    assert list(rows) == list(METHOD_ORDER)
    crosscoder = rows["crosscoder"]
    assert crosscoder[1:9] == ["–"] * 8
    assert crosscoder[header.index("paper encoder M_GT (%)")] == "56.42"
    assert rows["topk"][header.index("ours +FA decoder GT@0.95 (%)")] == "–"
    assert rows["topk"][header.index("ours decoder GT@0.95 (%)")] == "60.0"
    assert "- (none)" in md


def test_a_run_recorded_twice_raises_value_error() -> None:
    records = all_records()
    with pytest.raises(ValueError, match="twice"):
        results_markdown([*records, records[0]], preset="p", config={}, notes=[])
    with pytest.raises(ValueError, match="twice"):
        console_table([*records, records[0]])
    with pytest.raises(ValueError, match="twice"):
        check_unique([records[0], records[0]])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda r: {k: v for k, v in r.items() if k != "method"}, "method"),
        (lambda r: {"method": r["method"]}, "anchored"),
        (lambda r: {**r, "anchored": "sometimes"}, "anchored"),
        (lambda r: {**r, "fvu": "low"}, "fvu"),
    ],
    ids=["missing-method", "only-method", "non-bool-anchored", "non-number-fvu"],
)
def test_malformed_records_are_rejected_naming_the_field(change, field: str, tmp_path: Path) -> None:
    bad = change(record_fields(2, "topk", False))
    with pytest.raises(ValidationError, match=field) as info:
        BenchRecord.model_validate(bad)
    assert any(field in error["loc"] for error in info.value.errors())
    path = tmp_path / "results.json"
    path.write_text(json.dumps([record_fields(0, "relu", False), bad]))
    with pytest.raises(ValueError, match=rf"(?s){re.escape(str(path))} does not hold bench records.*{field}"):
        read_records(path)


def test_read_records_round_trips_and_names_an_unreadable_file(tmp_path: Path) -> None:
    records = all_records()
    path = tmp_path / "results.json"
    path.write_text(json.dumps([r.model_dump(mode="json") for r in records]))
    assert read_records(path) == records
    path.write_text("{broken")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        read_records(path)
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "missing.json"))):
        read_records(tmp_path / "missing.json")


def test_a_curve_of_the_wrong_length_raises_value_error() -> None:
    with pytest.raises(ValueError, match="51 thresholds but 1 decoder recovery values"):
        plot_recovery_curves([make_record(0, "relu", False, curve_dec=[0.5])], Path("unused.png"))


def test_console_table_one_line_per_record() -> None:
    records = partial_records()
    text = console_table(records)
    lines = text.splitlines()
    assert len(lines) == len(records) + 2
    assert len({len(line) for line in lines[1:]}) == 1  # fixed width
    body = lines[2:]
    assert [line.split()[0] for line in body] == [r.method for r in records]
    topk_plain = next(line for line in body if line.startswith("topk ") and " no " in line)
    assert topk_plain.split()[2:6] == ["60.0", "0.904", "12.0", "0.602"]
    assert console_table([]).count("\n") == 1


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def figure_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    fig_dir = tmp_path_factory.mktemp("report") / "figures"
    records = partial_records()
    return [
        plot_recovery_curves(records, fig_dir / "recovery_curves.png"),
        plot_best_match_histograms(records, fig_dir / "best_match_histograms.png"),
    ]


def test_figures_are_valid_pngs(figure_paths: list[Path]) -> None:
    for path in figure_paths:
        width, height = png_size(path)
        assert width > 100 and height > 100
        assert path.stat().st_size > 10_000


def test_figures_leave_pyplot_and_backend_alone(tmp_path: Path) -> None:
    code = (
        "import sys, matplotlib\n"
        "from dictlab.reproductions.bench.figures import RecoveryCurves, plot_recovery_curves\n"
        "before = dict.__getitem__(matplotlib.rcParams, 'backend')\n"
        "rec = RecoveryCurves(method='topk', anchored=False, taus=[0.5, 1.0], encoder=[1, 0], decoder=[1, 0.5])\n"
        f"plot_recovery_curves([rec], {str(tmp_path / 'c.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert dict.__getitem__(matplotlib.rcParams, 'backend') == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert png_size(tmp_path / "c.png")[0] > 100


def test_report_html(tmp_path: Path, figure_paths: list[Path]) -> None:
    out_dir = tmp_path / "out"
    records = partial_records()
    records[0] = records[0].model_copy(update={"run_dir": "runs/<b>relu</b>"})
    md = results_markdown(records, preset="tiny", config=CONFIG, notes=NOTES)
    env = environment_info("cpu", seed=7)
    path = write_report_html(
        out_dir,
        title="Bench <report> & co",
        records=records,
        results_md=md,
        figures=figure_paths,
        config={**CONFIG, "evil": "</pre><script>x</script>"},
        environment=env,
    )
    assert path == out_dir / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.count("<table") >= 3  # table 1, runs, environment
    assert "<td>84.90</td>" in page and "<td>0.00*</td>" in page
    assert "encoder" in page and "decoder" in page
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == len(figure_paths)
    for src in srcs:
        assert not Path(src).is_absolute()
        assert (out_dir / src).resolve().is_file()
    assert "<script" not in page and "<b>relu" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "Bench &lt;report&gt; &amp; co" in page
    assert "Decoder GT matches the paper" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert env["torch"] in page and "seed" in page


def test_report_html_figure_relative_to_out_dir_and_missing_figure(tmp_path: Path) -> None:
    fig = plot_recovery_curves(all_records()[:2], tmp_path / "figs" / "curves.png")
    page = write_report_html(
        tmp_path,
        title="t",
        records=[],
        results_md=None,
        figures=[Path("figs/curves.png")],
        config={},
        environment={},
        notes=["a note"],
    ).read_text()
    assert '<img src="figs/curves.png"' in page and fig.is_file()
    assert "<li>a note</li>" in page
    with pytest.raises(ValueError, match="does not exist"):
        write_report_html(
            tmp_path, title="t", records=[], results_md=None, figures=["nope.png"], config={}, environment={}
        )


def test_notes_from_markdown_round_trip() -> None:
    md = results_markdown(all_records(), preset="p", config={}, notes=["one", "two\nlines"])
    assert notes_from_markdown(md) == ["one", "two\nlines"]
    assert notes_from_markdown(results_markdown([], preset="p", config={}, notes=[])) == []


def test_sweep_table_orders_by_coefficient_and_marks_the_table1_run() -> None:
    main = [make_record(0, "relu", False, sparsity_coefficient=1.0), make_record(2, "topk", False)]
    sweep = [make_record(0, "relu", False, sparsity_coefficient=c, l0=30.0 / c, mip_chance=0.345) for c in (3.0, 0.1)]
    table = sweep_table(sweep, main)
    assert [row[:3] for row in table.rows] == [
        ("relu", "0.1", "300.00"),
        ("relu", "1*", "8.00"),
        ("relu", "3", "10.00"),
    ]
    assert table.rows[0][-1] == "0.345" and table.rows[1][-1] == "0.300", "each run's own chance MIP"
    md = results_markdown(main, preset="p", config={}, notes=[], sweep_records=sweep)
    assert "## Sparsity-coefficient sweep" in md and "| relu | 1\\* |" in md
    assert "Sparsity-coefficient sweep" not in results_markdown(main, preset="p", config={}, notes=[])
