"""The prepared check of a CUDA machine: tests, throughput, memory and one paper-scale bench method in one run.

Usage: benchmarks/gpu_check.sh [--out runs/gpu-check] [--device cuda] [--dry-run]

Four sections, each timed, each recorded even when another fails:

1. ``tests``: the device-parametrised tests on this device (``pytest -m devices -k <device>``): sparse and dense
   TopK-family paths agree in fp32 and under bf16 autocast, bf16 training tracks fp32, and the training loop reads
   nothing back from the device between log steps.
2. ``throughput``: every activation's training rate at 384 → 3072 and 768 → 16,384 (k = 32, batch 4096), beside
   the fp32 matmul rate measured in the same run (``benchmarks/train_throughput.py``).
3. ``wide_topk``: a TopK SAE 768 → 65,536 on the sparse path: samples/s and peak allocated device memory
   (``benchmarks/wide_topk_memory.py``).
4. ``bench``: ``dictlab bench --preset paper --methods topk --no-sweep`` (TopK without and with feature anchoring
   at the paper's scale): recovery, L0, FVU and wall time of both runs.

It writes ``gpu-check.json`` (the :class:`GpuCheckSummary` fields) and ``gpu-check.md`` (the same as tables) to
``--out`` and exits non-zero when a section failed. ``--dry-run`` runs every section on the CPU at toy sizes (the
smoke preset for the bench) in about a minute, so the script itself is tested without a GPU; its numbers mean
nothing.
"""

import argparse
import json
import platform
import subprocess
import sys
import time
import traceback
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch
from pydantic import BaseModel, Field
from train_throughput import Shape, measure
from wide_topk_memory import wide_run

import dictlab
from dictlab.files.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 480
"""The whole check is sized to finish within 8 minutes on one CUDA GPU."""


class Section(BaseModel):
    """One section's outcome."""

    name: str
    ok: bool
    seconds: float
    error: str | None = Field(default=None, description="The exception's last lines when the section failed.")


class TestCounts(BaseModel):
    """The device tests' outcome, read from pytest's JUnit XML."""

    command: str
    passed: int
    failed: int
    skipped: int


class ThroughputRow(BaseModel):
    activation: str
    path: str = Field(description="TopK family: sparse (one dense product) or dense; ReLU, JumpReLU: dense.")
    samples_per_s: float
    of_dense_limit: float = Field(description="samples/s ÷ the dense limit (10·d_in·d_sae FLOP per sample).")
    of_own_limit: float = Field(description="samples/s ÷ this path's limit: the dense limit, ×5 on the sparse path.")


class ThroughputTable(BaseModel):
    d_in: int
    d_sae: int
    k: int
    batch: int
    steps: int
    repeats: int
    matmul_tflops: float = Field(description="fp32 rate of the [batch, d_in]·[d_in, d_sae] product, this run.")
    dense_limit: float = Field(description="samples/s a dense step would reach at that matmul rate.")
    rows: list[ThroughputRow]


class WideTopK(BaseModel):
    d_in: int
    d_sae: int
    k: int
    batch: int
    samples_per_s: float
    peak_gib: float
    peak_kind: str = Field(description="cuda_allocated (torch's peak of allocated device memory) or rss (CPU).")


class BenchRun(BaseModel):
    name: str
    decoder_gt: float
    decoder_mip: float
    encoder_gt: float
    encoder_mip: float
    l0: float
    fvu: float
    samples_per_s: float
    wall_s: float


class BenchCheck(BaseModel):
    command: str
    runs: list[BenchRun]


class GpuCheckSummary(BaseModel):
    """Everything ``gpu-check.json`` holds."""

    dry_run: bool
    device: str
    device_name: str = Field(description="torch.cuda.get_device_name, or the CPU's name on a dry run.")
    torch: str
    cuda: str | None
    dictlab: str
    commit: str | None = Field(description="git HEAD of the checkout that ran, when it is a git checkout.")
    started: str = Field(description="UTC start time, ISO 8601.")
    seconds: float
    budget_s: int = BUDGET_S
    sections: list[Section]
    tests: TestCounts | None = None
    throughput: list[ThroughputTable] = []
    wide_topk: WideTopK | None = None
    bench: BenchCheck | None = None


def run_tests(device: str, out: Path) -> TestCounts:
    """The device-marked tests for ``device``, in a fresh interpreter; raises if any failed."""
    report = out / "tests.xml"
    command = [sys.executable, "-m", "pytest", "-m", "devices", "-k", device, "-p", "no:cacheprovider"]
    command += [f"--junitxml={report}"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if not report.exists():
        raise RuntimeError(f"pytest wrote no report (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr}")
    suite = ElementTree.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    total, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    skipped = int(suite.get("skipped", 0))
    counts = TestCounts(
        command="python " + " ".join(command[1:]), passed=total - failed - skipped, failed=failed, skipped=skipped
    )
    if failed or done.returncode != 0 or counts.passed == 0:
        raise RuntimeError(f"{failed} of {total} device tests failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
    return counts


def run_throughput(shape: Shape, device: str) -> ThroughputTable:
    result = measure(shape, device)
    rows = []
    for (activation, path), rate in result.rates.items():
        own = result.dense_limit * (5 if path == "sparse" else 1)
        rows.append(
            ThroughputRow(
                activation=activation,
                path=path,
                samples_per_s=rate,
                of_dense_limit=rate / result.dense_limit,
                of_own_limit=rate / own,
            )
        )
    return ThroughputTable(
        **vars(shape), matmul_tflops=result.matmul_gflops / 1e3, dense_limit=result.dense_limit, rows=rows
    )


def run_wide(device: str, dry_run: bool) -> WideTopK:
    size = dict(d_in=64, d_sae=2048, k=8, batch=256) if dry_run else dict(d_in=768, d_sae=65_536, k=32, batch=4096)
    run = wide_run(**size, steps=4, path="sparse", device=device)
    return WideTopK(**size, samples_per_s=run.samples_per_s, peak_gib=run.peak_gib, peak_kind=run.peak_kind)


def run_bench(device: str, dry_run: bool, out: Path) -> BenchCheck:
    folder = out / "bench"
    preset = "smoke" if dry_run else "paper"
    command = [sys.executable, "-m", "dictlab", "bench", "--preset", preset, "--methods", "topk", "--no-sweep"]
    command += ["--device", device, "--out", str(folder), "--no-progress", "--overwrite"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dictlab bench failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    runs = [
        BenchRun(
            name=record["method"] + ("-fa" if record["anchored"] else ""),
            decoder_gt=record["gt_recovery_dec"],
            decoder_mip=record["mip_dec"],
            encoder_gt=record["gt_recovery_enc"],
            encoder_mip=record["mip_enc"],
            l0=record["l0"],
            fvu=record["fvu"],
            samples_per_s=record["samples_per_s"],
            wall_s=record["wall_s"],
        )
        for record in json.loads((folder / "results.json").read_text())
    ]
    return BenchCheck(command="dictlab " + " ".join(command[3:]), runs=runs)


def commit() -> str | None:
    """git HEAD of this checkout, or None outside a git checkout."""
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def markdown(summary: GpuCheckSummary) -> str:
    """The summary as the tables the docs quote."""
    lines = [
        f"# GPU check: {summary.device_name}" + (" (dry run: toy sizes on the CPU)" if summary.dry_run else ""),
        "",
        f"torch {summary.torch}, CUDA {summary.cuda or '–'}, dictlab {summary.dictlab} at {summary.commit or '?'}; "
        f"started {summary.started}, {summary.seconds:.0f} s in all (budget {summary.budget_s} s).",
        "",
        "| section | ok | seconds |",
        "|---|---|---|",
        *(f"| {s.name} | {'yes' if s.ok else 'FAILED'} | {s.seconds:.1f} |" for s in summary.sections),
    ]
    if summary.tests is not None:
        t = summary.tests
        lines += ["", f"Tests (`{t.command}`): {t.passed} passed, {t.failed} failed, {t.skipped} skipped."]
    for table in summary.throughput:
        lines += [
            "",
            f"Throughput {table.d_in} → {table.d_sae}, k {table.k}, batch {table.batch} (median of {table.repeats} × "
            f"{table.steps} steps): fp32 matmul {table.matmul_tflops:.2f} TFLOP/s, dense limit "
            f"{table.dense_limit:,.0f} samples/s.",
            "",
            "| activation | path | samples/s | ÷ dense limit | ÷ own limit |",
            "|---|---|---|---|---|",
            *(
                f"| {r.activation} | {r.path} | {r.samples_per_s:,.0f} | {r.of_dense_limit:.2f} "
                f"| {r.of_own_limit:.2f} |"
                for r in table.rows
            ),
        ]
    if summary.wide_topk is not None:
        w = summary.wide_topk
        lines += [
            "",
            f"Wide TopK {w.d_in} → {w.d_sae:,} (k {w.k}, batch {w.batch}, sparse path, AuxK on): "
            f"{w.samples_per_s:,.0f} samples/s, peak {w.peak_kind} {w.peak_gib:.2f} GiB.",
        ]
    if summary.bench is not None:
        lines += [
            "",
            f"`{summary.bench.command}`:",
            "",
            "| run | decoder GT | decoder MIP | encoder GT | encoder MIP | L0 | FVU | samples/s | wall s |",
            "|---|---|---|---|---|---|---|---|---|",
            *(
                f"| {r.name} | {r.decoder_gt:.3f} | {r.decoder_mip:.3f} | {r.encoder_gt:.3f} | {r.encoder_mip:.3f} "
                f"| {r.l0:.1f} | {r.fvu:.3f} | {r.samples_per_s:,.0f} | {r.wall_s:.1f} |"
                for r in summary.bench.runs
            ),
        ]
    for section in summary.sections:
        if section.error:
            lines += ["", f"## {section.name} failed", "", "```", section.error, "```"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-check"), help="Folder for the summary files.")
    parser.add_argument("--device", default=None, help="Torch device (default: cuda; cpu on a dry run).")
    parser.add_argument("--dry-run", action="store_true", help="Every section on the CPU at toy sizes.")
    args = parser.parse_args()
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device is visible to torch; use --dry-run to check the script on the CPU")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started, clock = datetime.now(UTC), time.perf_counter()
    summary = GpuCheckSummary(
        dry_run=args.dry_run,
        device=device,
        device_name=torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor() or "cpu",
        torch=torch.__version__,
        cuda=torch.version.cuda,
        dictlab=dictlab.__version__,
        commit=commit(),
        started=started.isoformat(timespec="seconds"),
        seconds=0.0,
        sections=[],
    )

    def section(name: str, work: Callable[[], None]) -> None:
        begun = time.perf_counter()
        try:
            work()
            summary.sections.append(Section(name=name, ok=True, seconds=time.perf_counter() - begun))
        except Exception:  # recorded, and the remaining sections still run
            error = "".join(traceback.format_exc().splitlines(keepends=True)[-12:])
            summary.sections.append(Section(name=name, ok=False, seconds=time.perf_counter() - begun, error=error))
        print(f"{name}: {'ok' if summary.sections[-1].ok else 'FAILED'} in {summary.sections[-1].seconds:.1f} s")

    shapes = (
        [Shape(d_in=32, d_sae=256, k=4, batch=256, steps=3, repeats=1)]
        if args.dry_run
        else [Shape(d_in=384, d_sae=3072), Shape(d_in=768, d_sae=16_384)]
    )
    section("tests", lambda: setattr(summary, "tests", run_tests(torch.device(device).type, out)))
    section("throughput", lambda: setattr(summary, "throughput", [run_throughput(s, device) for s in shapes]))
    section("wide_topk", lambda: setattr(summary, "wide_topk", run_wide(device, args.dry_run)))
    section("bench", lambda: setattr(summary, "bench", run_bench(device, args.dry_run, out)))
    summary.seconds = time.perf_counter() - clock
    atomic_write_text(out / "gpu-check.json", summary.model_dump_json(indent=2) + "\n")
    atomic_write_text(out / "gpu-check.md", markdown(summary))
    print(f"wrote {out / 'gpu-check.json'} and {out / 'gpu-check.md'} ({summary.seconds:.0f} s)")
    return 0 if all(s.ok for s in summary.sections) else 1


if __name__ == "__main__":
    sys.exit(main())
