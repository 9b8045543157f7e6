"""Bench reports: results.md, a console table, PNG figures, a static report.html, and the paper's Table 1."""

from dictlab.report.figures import plot_best_match_histograms, plot_recovery_curves, plot_training_trajectories
from dictlab.report.html import environment_info, html_table, notes_from_markdown, write_report_html
from dictlab.report.paper_tables import (
    METHOD_ORDER,
    PAPER_TABLE1,
    PAPER_TABLE1_NOTE,
    PAPER_TABLE1_SETTING,
    PAPER_TABLE1_ZERO_FOOTNOTE,
    PaperTable1Row,
    PaperTable1Setting,
)
from dictlab.report.tables import (
    Table,
    console_table,
    markdown_table,
    missing_runs,
    results_markdown,
    runs_table,
    sweep_table,
    table1,
    validate_records,
)

__all__ = [
    "METHOD_ORDER",
    "PAPER_TABLE1",
    "PAPER_TABLE1_NOTE",
    "PAPER_TABLE1_SETTING",
    "PAPER_TABLE1_ZERO_FOOTNOTE",
    "PaperTable1Row",
    "PaperTable1Setting",
    "Table",
    "console_table",
    "environment_info",
    "html_table",
    "markdown_table",
    "missing_runs",
    "notes_from_markdown",
    "plot_best_match_histograms",
    "plot_recovery_curves",
    "plot_training_trajectories",
    "results_markdown",
    "runs_table",
    "sweep_table",
    "table1",
    "validate_records",
    "write_report_html",
]
