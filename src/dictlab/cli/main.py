"""The ``dictlab`` command line."""

import logging
import sys
from pathlib import Path

import click
from pydantic import ValidationError

from dictlab import __version__
from dictlab.cli.options import model_from_options, options_from_model
from dictlab.experiments.bench import BenchRequest, run_bench
from dictlab.experiments.capture import CaptureConfig, run_capture
from dictlab.experiments.diagnose import DiagnoseRequest, run_diagnose
from dictlab.experiments.in_model import InModelRequest, run_in_model_eval
from dictlab.experiments.interop import export_saelens, import_saelens
from dictlab.experiments.presets import PRESETS
from dictlab.experiments.reproduce import REPRODUCTIONS, ReproduceRequest, reproduction_help, run_reproduction
from dictlab.experiments.train_store import StoreTrainRequest, train_on_store
from dictlab.report.index_html import write_report_index


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(__version__, prog_name="dictlab")
def cli() -> None:
    """dictlab: sparse dictionary learning with ground-truth recovery and feature anchoring."""


@cli.command()
@options_from_model(BenchRequest, overrides={"preset": {"type": click.Choice(list(PRESETS))}})
def bench(**options: object) -> None:
    """Train the seven Table-1 methods without and with feature anchoring on the Linear Representation Bench,
    then write results.json, results.md, figures and report.html to --out."""
    try:
        request = model_from_options(BenchRequest, options)
        run_bench(request, echo=click.echo)  # type: ignore[arg-type]
    except (ValueError, ValidationError) as err:
        raise click.ClickException(str(err)) from err


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@options_from_model(DiagnoseRequest, exclude=("folder",))
def diagnose(folder: Path, **options: object) -> None:
    """Check a dictionary against the first-order optimality conditions of the nonnegative L1 dictionary
    problem (P_K): conditions C1–C3, identities E1–E4, the pairwise hull test, hierarchy, dense/antipodal
    features, residual structure and the wide-dictionary convex bound. FOLDER is a dictlab run folder or a
    SAELens folder; writes diagnostics.json, summary.txt and figures to --out."""
    try:
        request = model_from_options(DiagnoseRequest, {"folder": folder, **options})
        run_diagnose(request, echo=click.echo)  # type: ignore[arg-type]
    except (ValueError, ValidationError) as err:
        raise click.ClickException(str(err)) from err


@cli.command(
    help="Reproduce an experiment (optimality theory, real-activation anchoring); writes results.json, "
    "results.md and figures/ to --out.\n\n\b\nNAME is one of:\n" + reproduction_help()
)
@click.argument("name", type=click.Choice(list(REPRODUCTIONS)))
@options_from_model(ReproduceRequest)
def reproduce(name: str, **options: object) -> None:
    try:
        request = model_from_options(ReproduceRequest, options)
        run_reproduction(name, request, echo=click.echo)  # type: ignore[arg-type]
    except (ValueError, ValidationError, OSError) as err:
        raise click.ClickException(str(err)) from err


@cli.command()
@options_from_model(CaptureConfig)
def capture(**options: object) -> None:
    """Capture activations of a transformers model at one or more modules over a text corpus into a sharded
    activation store (manifest.json + .npy shards). Re-running the same command resumes an interrupted capture.
    Needs the lm extra."""
    try:
        config = model_from_options(CaptureConfig, options)
        run_capture(config, echo=click.echo)  # type: ignore[arg-type]
    except (ValueError, ValidationError, OSError) as err:
        raise click.ClickException(str(err)) from err


@cli.command()
@options_from_model(StoreTrainRequest)
def train(**options: object) -> None:
    """Train a sparse dictionary on an activation store, streaming shuffled batches from disk with a bounded
    buffer; writes cfg.json + weights.safetensors (usable on raw activations), metrics.json and a resumable
    train/ folder to --out."""
    try:
        request = model_from_options(StoreTrainRequest, options)
        train_on_store(request, echo=click.echo)  # type: ignore[arg-type]
    except (ValueError, ValidationError, OSError) as err:
        raise click.ClickException(str(err)) from err


@cli.command("eval-in-model")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@options_from_model(InModelRequest, exclude=("folder",))
def eval_in_model(folder: Path, **options: object) -> None:
    """Splice the SAE in FOLDER into its causal LM at its module and report the next-token cross-entropy
    increase, the KL to the clean model and the CE loss recovered (vs zero ablation). Needs the lm extra."""
    try:
        request = model_from_options(InModelRequest, {"folder": folder, **options})
        run_in_model_eval(request, echo=click.echo)  # type: ignore[arg-type]
    except (ValueError, ValidationError, OSError) as err:
        raise click.ClickException(str(err)) from err


@cli.command("export-saelens")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--model-name", help="SAELens metadata.model_name (default: the model the run was trained on).")
@click.option("--hook-name", help="SAELens metadata.hook_name (default: the module the run was trained on).")
def export_saelens_command(run: Path, out: Path, model_name: str | None, hook_name: str | None) -> None:
    """Write the SAE of dictlab run folder RUN as a SAELens v6 folder OUT (cfg.json + sae_weights.safetensors):
    relu → standard, topk → topk, jumprelu/batchtopk/matryoshka → jumprelu (same inference codes)."""
    try:
        click.echo(f"wrote {export_saelens(run, out, model_name, hook_name)}")
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err


@cli.command("import-saelens")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
def import_saelens_command(folder: Path, out: Path) -> None:
    """Convert the SAELens SAE folder FOLDER (standard, topk or jumprelu) into a dictlab run folder OUT."""
    try:
        click.echo(f"wrote {import_saelens(folder, out)}")
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err


@cli.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Folder that receives index.html (links are relative to it).",
)
def report(dirs: tuple[Path, ...], out: Path) -> None:
    """Build index.html across run folders (reproductions and benches): one row per run with a link to its
    report.html, its claims held / failed, its time and the first paragraph of its results.md."""
    try:
        click.echo(f"wrote {write_report_index(list(dirs), out)}")
    except (ValueError, OSError) as err:
        raise click.ClickException(str(err)) from err


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    cli(prog_name="dictlab")


if __name__ == "__main__":
    main()
