"""The ``dictlab`` command line: a thin layer that parses options into typed requests and runs one job each."""

import logging
import sys
from pathlib import Path

import click

from dictlab import __version__
from dictlab.cli.errors import DEBUG_ENV, reports_errors
from dictlab.cli.options import model_from_options, options_from_model
from dictlab.distributed import init_from_environment, shutdown, world
from dictlab.jobs.capture import CaptureConfig, run_capture
from dictlab.jobs.diagnose import DiagnoseRequest, run_diagnose
from dictlab.jobs.evaluate import EvaluateRequest, run_evaluate
from dictlab.jobs.features import FeaturesRequest, run_features
from dictlab.jobs.in_model import InModelRequest, run_in_model_eval
from dictlab.jobs.saelens_interop import export_saelens, import_saelens
from dictlab.jobs.train import StoreTrainRequest, train_on_store
from dictlab.models import activation_names
from dictlab.report.index_html import write_report_index
from dictlab.reproductions.bench import PRESETS, BenchRequest, run_bench
from dictlab.reproductions.registry import REPRODUCTIONS, ReproduceRequest, reproduction_help, run_reproduction

DISTRIBUTED_COMMANDS = ("train", "capture", "bench")
"""Commands that run over several processes under torchrun."""


def echo(message: str) -> None:
    """Print ``message`` once per run: on rank 0 of a distributed run, always in one process."""
    if world().is_main:
        click.echo(message)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(__version__, prog_name="dictlab")
@click.option(
    "--debug",
    is_flag=True,
    envvar=DEBUG_ENV,
    help=f"Show the full traceback of an error instead of one line (or set {DEBUG_ENV}=1).",
)
@click.pass_context
def cli(context: click.Context, debug: bool) -> None:
    """dictlab: sparse dictionary learning with ground-truth recovery and feature anchoring."""
    if world().distributed and context.invoked_subcommand not in DISTRIBUTED_COMMANDS:
        raise click.UsageError(
            f"`dictlab {context.invoked_subcommand}` runs in one process; under torchrun only "
            + ", ".join(f"`dictlab {name}`" for name in DISTRIBUTED_COMMANDS)
            + " is distributed"
        )


@cli.command()
@options_from_model(BenchRequest, overrides={"preset": {"type": click.Choice(list(PRESETS))}})
@reports_errors
def bench(**options: object) -> None:
    """Train the seven Table-1 methods without and with feature anchoring on the Linear Representation Bench,
    then write results.json, results.md, figures and report.html to --out."""
    run_bench(model_from_options(BenchRequest, options), echo=echo)


@cli.command()
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@options_from_model(DiagnoseRequest, exclude=("folder",))
@reports_errors
def diagnose(folder: Path, **options: object) -> None:
    """Check a dictionary against the first-order optimality conditions of the nonnegative L1 dictionary
    problem (P_K): conditions C1–C3, identities E1–E4, the pairwise hull test, hierarchy, dense/antipodal
    features, residual structure and the wide-dictionary convex bound. FOLDER is a dictlab run, SAELens,
    sparsify, dictionary_learning, OpenAI or Gemma Scope folder; writes diagnostics.json, summary.txt and figures to
    --out."""
    run_diagnose(model_from_options(DiagnoseRequest, {"folder": folder, **options}), echo=echo)


@cli.command(
    help="Reproduce an experiment (optimality theory, Tang et al.'s tables, real-activation anchoring); writes "
    "results.json, results.md, figures/ and report.html to --out.\n\n\b\nNAME is one of:\n" + reproduction_help()
)
@click.argument("name", type=click.Choice(list(REPRODUCTIONS)))
@options_from_model(ReproduceRequest)
@reports_errors
def reproduce(name: str, **options: object) -> None:
    run_reproduction(name, model_from_options(ReproduceRequest, options), echo=echo)


@cli.command()
@options_from_model(CaptureConfig)
@reports_errors
def capture(**options: object) -> None:
    """Capture activations of a transformers model at one or more modules over a text corpus into a sharded
    activation store (manifest.json + .npy shards). Re-running the same command resumes an interrupted capture.
    Needs the lm extra."""
    run_capture(model_from_options(CaptureConfig, options), echo=echo)


@cli.command()
@options_from_model(StoreTrainRequest, overrides={"activation": {"type": click.Choice(activation_names())}})
@reports_errors
def train(**options: object) -> None:
    """Train a sparse dictionary on an activation store, streaming shuffled batches from disk with a bounded
    buffer; writes cfg.json + weights.safetensors (usable on raw activations), metrics.json and a resumable
    train/ folder to --out."""
    train_on_store(model_from_options(StoreTrainRequest, options), echo=echo)


@cli.command()
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@options_from_model(FeaturesRequest, exclude=("run",))
@reports_errors
def features(run: Path, **options: object) -> None:
    """What every latent of the dictionary in RUN means, from one pass over --store: density, activation
    histogram, top and quantile-sampled token contexts, co-firing and decoder neighbours, logit lens, label
    detection and (--diagnose) the optimality diagnosis; writes features.json, latents/ and an offline HTML browser
    (browser/index.html) to --out."""
    run_features(model_from_options(FeaturesRequest, {"run": run, **options}), echo=echo)


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@options_from_model(EvaluateRequest, exclude=("runs",))
@reports_errors
def evaluate(runs: tuple[Path, ...], **options: object) -> None:
    """Evaluate the SAEs in RUNS (dictlab, SAELens, sparsify, dictionary_learning, OpenAI or Gemma Scope folders)
    the way the field compares them: SAELens/SAEBench core metrics, k-sparse probing, first-letter and WordNet
    absorption (with the agreement of dictlab's label-free nested-pair flags). Writes evaluation.json,
    results/<SAE>.json, SAEBench's layout under saebench/, and report.html with the L0 frontier to --out."""
    run_evaluate(model_from_options(EvaluateRequest, {"runs": runs, **options}), echo=echo)


@cli.command("eval-in-model")
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@options_from_model(InModelRequest, exclude=("folder",))
@reports_errors
def eval_in_model(folder: Path, **options: object) -> None:
    """Splice the SAE in FOLDER into its causal LM at its module and report the next-token cross-entropy
    increase, the KL to the clean model and the CE loss recovered (vs zero ablation). Needs the lm extra."""
    run_in_model_eval(model_from_options(InModelRequest, {"folder": folder, **options}), echo=echo)


@cli.command("export-saelens")
@click.argument("run", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--model-name", help="SAELens metadata.model_name (default: the model the run was trained on).")
@click.option("--hook-name", help="SAELens metadata.hook_name (default: the module the run was trained on).")
@click.option("--overwrite", is_flag=True, help="Replace OUT if another command or source wrote it.")
@reports_errors
def export_saelens_command(
    run: Path, out: Path, model_name: str | None, hook_name: str | None, overwrite: bool
) -> None:
    """Write the SAE in RUN (a dictlab run, or a sparsify, dictionary_learning, OpenAI or Gemma Scope folder or file)
    as a SAELens v6 folder OUT (cfg.json + sae_weights.safetensors): relu → standard, topk → topk,
    jumprelu/batchtopk/matryoshka → jumprelu (same inference codes)."""
    click.echo(f"wrote {export_saelens(run, out, model_name, hook_name, overwrite)}")


@cli.command("import-saelens")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace OUT if another command or source wrote it.")
@reports_errors
def import_saelens_command(folder: Path, out: Path, overwrite: bool) -> None:
    """Convert the SAELens SAE folder FOLDER (standard, topk or jumprelu) into a dictlab run folder OUT."""
    click.echo(f"wrote {import_saelens(folder, out, overwrite)}")


@cli.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Folder that receives index.html (links are relative to it).",
)
@reports_errors
def report(dirs: tuple[Path, ...], out: Path) -> None:
    """Build index.html across run folders (reproductions and benches): one row per run with a link to its
    report.html, its claims held / failed, its time and the first paragraph of its results.md."""
    click.echo(f"wrote {write_report_index(list(dirs), out)}")


def main() -> None:
    """Console-script entry point; under ``torchrun`` every process joins the process group first."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    init_from_environment()
    try:
        cli(prog_name="dictlab")
    finally:
        shutdown()


if __name__ == "__main__":
    main()
