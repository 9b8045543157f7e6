"""dictlab reproduce theory --quick: every construction's check passes, and the outputs are written."""

from dictlab.reproductions.registry import ReproduceRequest, run_reproduction


def test_reproduce_theory_passes_every_row_and_writes_a_report(tmp_path) -> None:
    results = run_reproduction("theory", ReproduceRequest(out=tmp_path, quick=True), echo=lambda _: None)
    assert [c.name for c in results.checks] == [
        "Theorem 3.1",
        "Theorem 3.3",
        "Theorem 3.4",
        "Example 3.5",
        "Theorem 3.6",
        "Theorem 3.8",
    ]
    assert all(c.passed for c in results.checks)
    for name in ("results.json", "results.md", "report.html", "figures/theorem_3_1.png"):
        assert (tmp_path / name).is_file(), name
    assert "<table>" in (tmp_path / "report.html").read_text()
