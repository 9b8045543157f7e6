"""`dictlab diagnose`: load a dictionary and data, run the optimality diagnostics, write JSON and figures."""

from collections.abc import Callable
from pathlib import Path

from pydantic import Field

from dictlab.diagnostics.diagnose import DiagnoseOptions, Diagnostics, diagnose_model
from dictlab.diagnostics.problem import DiagnosticsInputError
from dictlab.diagnostics.sources import DICTIONARY_HELP, load_data, load_source
from dictlab.files.atomic import atomic_write_text
from dictlab.models.formats import dictionary_files
from dictlab.outputs import RunIdentity, check_output, claim_output, file_fingerprint, folder_fingerprints, staged
from dictlab.report.diagnostic_figures import plot_pairwise_hulls, plot_violation_histograms
from dictlab.report.diagnostic_tables import diagnostics_summary

"""The SAELens weights file, beside cfg.json (a dictlab folder's weight files come from its index)."""
MIN_ROWS = 2
"""Fewest data rows a diagnosis accepts (statistics over one point are undefined)."""


class DiagnoseRequest(DiagnoseOptions):
    """A diagnose job: where the dictionary and data are, and where results go."""

    folder: Path = Field(description=DICTIONARY_HELP)
    data: Path | None = Field(
        default=None,
        description="Activations (.npy, .safetensors, .pt; rows = samples). Default: a bench run's test split.",
    )
    target: Path | None = Field(default=None, description="Transcoder targets (same row order as --data).")
    key: str | None = Field(default=None, description="Tensor name inside --data/--target when the file holds several.")
    out: Path = Field(default=Path("diagnostics"), description="Output folder.")
    overwrite: bool = Field(
        default=False, description="Replace the results in --out if they came from another dictionary, data or options."
    )


def diagnose_identity(request: DiagnoseRequest) -> RunIdentity:
    """What makes a diagnostics folder: the options and the fingerprints of the dictionary and data files."""
    options = request.model_dump(mode="json", include=set(DiagnoseOptions.model_fields))
    root, files = dictionary_files(request.folder)
    inputs = folder_fingerprints(root, files, prefix="dictionary/")
    for name in ("data", "target"):
        path = getattr(request, name)
        if path is not None:
            inputs[name] = file_fingerprint(path)
    paths = {"dictionary": str(request.folder)}
    paths |= {name: str(getattr(request, name)) for name in ("data", "target") if getattr(request, name)}
    return RunIdentity(command="diagnose", config=options | {"key": request.key}, inputs=inputs, paths=paths)


def run_diagnose(request: DiagnoseRequest, echo: Callable[[str], None] = print) -> Diagnostics:
    """Diagnose and write ``diagnostics.json``, ``summary.txt`` and ``figures/`` under ``request.out``."""
    identity = diagnose_identity(request)
    check_output(request.out, identity, request.overwrite)
    source = load_source(request.folder)
    X_in, X_out, data_note = load_data(source, request.data, request.target, request.key, request.max_points)
    if X_in.shape[0] < MIN_ROWS:
        raise DiagnosticsInputError(f"diagnose needs at least {MIN_ROWS} data rows, got {X_in.shape[0]}")
    options = DiagnoseOptions.model_validate(request.model_dump(include=set(DiagnoseOptions.model_fields)))
    diagnostics = diagnose_model(
        source.model,
        X_in,
        X_out,
        options,
        training_coefficient=source.training_coefficient,
        source={**source.describe(), "data": data_note},
    )
    summary = diagnostics_summary(diagnostics.report)
    with claim_output(request.out, identity, request.overwrite) as out, staged(out) as stage:
        (stage / "figures").mkdir()
        if diagnostics.report.pairwise.worst:
            plot_pairwise_hulls(diagnostics, stage / "figures" / "pairwise_hulls.png")
        plot_violation_histograms(diagnostics, stage / "figures" / "violations.png")
        atomic_write_text(stage / "summary.txt", summary + "\n")
        atomic_write_text(stage / "diagnostics.json", diagnostics.report.model_dump_json(indent=2) + "\n")
    echo(summary)
    echo(f"wrote {out / 'diagnostics.json'}, {out / 'summary.txt'} and {out / 'figures'}")
    return diagnostics
