"""Rendering shared by every output dictlab writes: markdown tables and number formats, headless matplotlib
figures, static self-contained HTML (report.html per run, index.html across runs, the offline feature browser)."""

from dictlab.report.feature_browser import write_browser
from dictlab.report.figures import DEFAULT_DPI, PALETTE, save_figure
from dictlab.report.html import Table, environment_info, html_table, page
from dictlab.report.index_html import write_report_index
from dictlab.report.markdown import fmt, markdown_table, pct
from dictlab.report.reproduction_html import markdown_to_html, report_summary, write_reproduction_report

__all__ = [
    "DEFAULT_DPI",
    "PALETTE",
    "Table",
    "environment_info",
    "fmt",
    "html_table",
    "markdown_table",
    "markdown_to_html",
    "page",
    "pct",
    "report_summary",
    "save_figure",
    "write_browser",
    "write_report_index",
    "write_reproduction_report",
]
