"""`dictlab diagnose`: load a dictionary and data, run the optimality diagnostics, write JSON and figures."""

from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from dictlab.atomic import atomic_write_text
from dictlab.diagnostics.diagnose import DiagnoseOptions, Diagnostics, diagnose_model
from dictlab.diagnostics.sources import load_data, load_source
from dictlab.report.diagnostic_figures import plot_pairwise_hulls, plot_violation_histograms
from dictlab.report.diagnostic_tables import diagnostics_summary


class DiagnoseRequest(DiagnoseOptions):
    """A diagnose job: where the dictionary and data are, and where results go."""

    folder: Path = Field(description="dictlab run folder or SAELens folder (cfg.json + sae_weights.safetensors).")
    data: Path | None = Field(
        default=None,
        description="Activations (.npy, .safetensors, .pt; rows = samples). Default: a bench run's test split.",
    )
    target: Path | None = Field(default=None, description="Transcoder targets (same row order as --data).")
    key: str | None = Field(default=None, description="Tensor name inside --data/--target when the file holds several.")
    out: Path = Field(default=Path("diagnostics"), description="Output folder.")


def run_diagnose(request: DiagnoseRequest, echo: Callable[[str], None] = print) -> Diagnostics:
    """Diagnose and write ``diagnostics.json``, ``summary.txt`` and ``figures/`` under ``request.out``."""
    source = load_source(request.folder)
    X_in, X_out, data_note = load_data(source, request.data, request.target, request.key, request.max_points)
    options = DiagnoseOptions.model_validate(request.model_dump(include=set(DiagnoseOptions.model_fields)))
    diagnostics = diagnose_model(
        source.model,
        X_in,
        X_out,
        options,
        training_coefficient=source.training_coefficient,
        source={**source.describe(), "data": data_note},
    )
    out = request.out
    (out / "figures").mkdir(parents=True, exist_ok=True)
    summary = diagnostics_summary(diagnostics.report)
    if diagnostics.report.pairwise.worst:
        plot_pairwise_hulls(diagnostics, out / "figures" / "pairwise_hulls.png")
    plot_violation_histograms(diagnostics, out / "figures" / "violations.png")
    atomic_write_text(out / "summary.txt", summary + "\n")
    atomic_write_text(out / "diagnostics.json", diagnostics.report.model_dump_json(indent=2) + "\n")
    echo(summary)
    echo(f"wrote {out / 'diagnostics.json'}, {out / 'summary.txt'} and {out / 'figures'}")
    return diagnostics
