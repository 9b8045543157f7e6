"""JumpReLU audit: do the thresholds learn, and does a requested L0 come out?

Usage: python benchmarks/jumprelu_audit.py [--study all|parameterisation|precision|bandwidth|target|quadratic]
       [--steps 600] [--lr 3e-3] [--d-sae 128] [--init-threshold 0.1] [--targets 3 8 16] [--target-coefficients 1 10]

Every run trains one JumpReLU SAE with dictlab's :class:`~dictlab.training.Trainer` on a small Linear Representation
Bench (default: the smoke preset's 32 features in 24 dimensions, S = 0.9, 4,096 training rows; batch 128, 600
steps, Adam 3e-3 with the recipe's warm-up and final decay, θ⁰ = 0.1 as in the bench presets) and records at every
log step: the mean relative threshold change since initialisation mean_i |θ_i − θ_i⁰| / θ_i⁰, the mean relative
change over the last log interval, the fraction of thresholds that moved by more than 1 %, the median θ, the
training-batch L0, the L0 and FVU on 1,000 held-out rows (eval mode), and decoder ground-truth recovery (GT@0.95).

Studies (each row one run):
- parameterisation: θ trained directly (dictlab's JumpReLU) vs log θ (Rajamanoharan et al., arXiv 2407.14435,
  App. J; dictlab's JumpReLU before this audit, reproduced here as ``LogThresholdJumpReLU``).
- precision: ``TrainConfig.precision`` fp32 vs bf16 (a bfloat16-autocast forward; parameters stay fp32).
- bandwidth: the straight-through bandwidth ε.
- target: ``RecipeConfig.target_l0`` (penalty λ·|L0/target − 1|) for each target and λ.
- quadratic: for comparison, Gemma Scope 2's per-sample penalty λ·(2/target)·(l0_b − target)² in place of the L0
  penalty (SAELens ``jumprelu_sparsity_loss_mode="quadratic"``), for each target and λ.
"""

import argparse
import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import Tensor, nn

from dictlab.data import LRBConfig, generate_lrb
from dictlab.metrics import recovery_probe
from dictlab.metrics.evaluate import reconstruction_metrics
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.models.activations import JumpReLU
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer, read_training_log
from dictlab.training.config import Precision


class LogThresholdJumpReLU(JumpReLU):
    """JumpReLU trained through log θ (θ = exp(log_threshold)), the paper's App. J parameterisation."""

    def __init__(self, d_sae: int, init_threshold: float, bandwidth: float) -> None:
        super().__init__(d_sae, init_threshold, bandwidth)
        del self.threshold
        self.log_threshold = nn.Parameter(torch.full((d_sae,), math.log(init_threshold)))

    def gate_threshold(self) -> Tensor:
        return self.log_threshold.exp()

    def inference_threshold(self) -> Tensor:
        return self.log_threshold.detach().exp()


class QuadraticTargetJumpReLU(JumpReLU):
    """JumpReLU whose sparsity penalty is Gemma Scope 2's per-sample (2/T)·(l0_b − T)² (SAELens quadratic mode)."""

    target: float = 0.0

    def l0_penalty(self, sample_l0: Tensor) -> Tensor:
        return (2 / self.target * (sample_l0 - self.target) ** 2).mean()


def thresholds(model: SparseDictionary) -> Tensor:
    """θ [d_sae] of a JumpReLU dictionary (eval-mode gate)."""
    activation = model.activation
    assert isinstance(activation, JumpReLU)
    return activation.inference_threshold()


@dataclass(frozen=True)
class Run:
    label: str
    parameterisation: Literal["theta", "log"] = "theta"
    precision: Precision = "fp32"
    bandwidth: float = 0.05
    coefficient: float = 0.1
    target_l0: float | None = None
    quadratic_target: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def train_one(run: Run, args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    view, dataset = data["view"], data["dataset"]
    cfg = DictionaryConfig(
        d_in=view.d_in,
        d_out=view.d_out,
        d_sae=args.d_sae,
        activation="jumprelu",
        jumprelu_init_threshold=args.init_threshold,
        jumprelu_bandwidth=run.bandwidth,
    )
    model = SparseDictionary(cfg, torch.Generator().manual_seed(0))
    if run.parameterisation == "log":
        model.activation = LogThresholdJumpReLU(args.d_sae, args.init_threshold, run.bandwidth)
    if run.quadratic_target is not None:
        quadratic = QuadraticTargetJumpReLU(args.d_sae, args.init_threshold, run.bandwidth)
        quadratic.target = run.quadratic_target
        model.activation = quadratic
    theta0 = thresholds(model).clone()
    previous = [theta0]
    test_rows = dataset.codes("test")
    recovery = recovery_probe(view.truth.features_in, view.truth.features_out)

    def probe(m: SparseDictionary) -> dict[str, float]:
        theta = thresholds(m)
        last = previous[0]
        previous[0] = theta.clone()
        held_out = reconstruction_metrics(m, test_rows, view.materialize)
        return {
            "rel_change": float(((theta - theta0).abs() / theta0).mean()),
            "rel_step": float(((theta - last).abs() / last.clamp_min(1e-12)).mean()),
            "moved_1pct": float(((theta - theta0).abs() > 0.01 * theta0).float().mean()),
            "theta_median": float(theta.median()),
            "test_l0": held_out["l0"],
            "test_fvu": held_out["fvu"],
            **recovery(m),
        }

    recipe = RecipeConfig(
        lr=args.lr,
        sparsity_coefficient=run.coefficient,
        target_l0=run.target_l0,
        dead_window_samples=dataset.config.n_train,
    )
    train = TrainConfig(
        batch_size=args.batch,
        steps=args.steps,
        log_every=args.log_every,
        checkpoint_every=0,
        progress=False,
        precision=run.precision,
    )
    batches = ShuffledBatches(dataset.codes("train"), train.batch_size, train.seed)
    with tempfile.TemporaryDirectory() as workdir:
        trainer = Trainer([Member("jumprelu", model, recipe, view.materialize, probe=probe)], batches, train, workdir)
        started = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - started
        lines = read_training_log(workdir)
    return {"run": run, "lines": lines, "seconds": seconds}


def studies(args: argparse.Namespace) -> dict[str, list[Run]]:
    base = Run("θ (dictlab)")
    return {
        "parameterisation": [base, Run("log θ (App. J)", parameterisation="log")],
        "precision": [
            replace(base, label="θ fp32"),
            Run("θ bf16-autocast", precision="bf16"),
            Run("log θ bf16-autocast", parameterisation="log", precision="bf16"),
        ],
        "bandwidth": [
            *(Run(f"θ ε={e:g}", bandwidth=e) for e in (0.005, 0.05, 0.5)),
            *(Run(f"log θ ε={e:g}", parameterisation="log", bandwidth=e) for e in (0.005, 0.5)),
        ],
        "target": [
            *(
                Run(f"target {t:g}, λ={c:g}", coefficient=c, target_l0=t)
                for t in args.targets
                for c in args.target_coefficients
            ),
        ],
        "quadratic": [
            Run(f"quadratic {t:g}, λ={c:g}", coefficient=c, quadratic_target=t)
            for t in args.targets
            for c in args.target_coefficients
        ],
    }


def print_header(title: str) -> None:
    print(f"\n## {title}\n")
    print(
        "| run | step | mean abs(θ−θ⁰)/θ⁰ | mean abs(Δθ)/θ per log interval | moved > 1 % | θ median | L0 batch "
        "| L0 test | FVU test | GT@0.95 | s |"
    )
    print("|" + "---|" * 11)


def print_rows(result: dict[str, Any], n_points: int) -> None:
    lines = result["lines"]
    picks = sorted({round(i * (len(lines) - 1) / max(1, n_points - 1)) for i in range(n_points)})
    for j, i in enumerate(picks):
        line = lines[i]
        name = result["run"].label if j == 0 else ""
        seconds = f"{result['seconds']:.0f}" if j == len(picks) - 1 else ""
        print(
            f"| {name} | {line['step']} | {line['rel_change']:.3f} | {line['rel_step']:.4f} | "
            f"{line['moved_1pct']:.0%} | {line['theta_median']:.3f} | {line['l0']:.1f} | {line['test_l0']:.1f} | "
            f"{line['test_fvu']:.3f} | {line['gt_recovery_dec']:.1%} | {seconds} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=str(__doc__).splitlines()[0])
    parser.add_argument(
        "--study", default="all", choices=["all", "parameterisation", "precision", "bandwidth", "target", "quadratic"]
    )
    parser.add_argument("--n-features", type=int, default=32, help="LRB ground-truth features.")
    parser.add_argument("--d-in", type=int, default=24, help="LRB input width.")
    parser.add_argument("--sparsity", type=float, default=0.9, help="LRB S = Pr(feature inactive).")
    parser.add_argument("--max-interference", type=float, default=0.5, help="LRB PGD interference bound M.")
    parser.add_argument("--n-train", type=int, default=4096, help="Training rows.")
    parser.add_argument("--d-sae", type=int, default=128)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate (bench default preset: 3e-3).")
    parser.add_argument("--target-coefficients", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--targets", type=float, nargs="+", default=[3.0, 8.0, 16.0])
    parser.add_argument("--init-threshold", type=float, default=0.1, help="θ⁰ (bench preset: 0.1).")
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--points", type=int, default=4, help="Log steps shown per run.")
    args = parser.parse_args()
    config = LRBConfig(
        n_features=args.n_features,
        d_in=args.d_in,
        d_out=args.d_in,
        sparsity=args.sparsity,
        max_interference=args.max_interference,
        n_train=args.n_train,
        n_val=0,
        n_test=1000,
    )
    dataset = generate_lrb(config)
    data = {"dataset": dataset, "view": dataset.view("sae")}
    print(
        f"LRB {config.n_features} features → d={config.d_in}, S={config.sparsity}, {config.n_train} rows; "
        f"JumpReLU d_sae={args.d_sae}, θ⁰={args.init_threshold}, lr={args.lr}, {args.steps} steps of batch {args.batch}"
    )
    chosen = studies(args)
    for name, runs in chosen.items():
        if args.study in ("all", name):
            print_header(name)
            for run in runs:
                print_rows(train_one(run, args, data), args.points)


if __name__ == "__main__":
    main()
