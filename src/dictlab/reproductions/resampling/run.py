"""``dictlab reproduce resampling``: dead-latent resampling on real LM activations (the paper's Figure 7, scaled).

SmolLM2 residual-stream activations (captured into an activation store, or an existing store) train two ReLU SAEs
from one initialisation on the same batches: one standard, one that resamples dead latents periodically (Bricken et
al. 2023: inputs drawn ∝ loss², decoder ← residual direction, encoder ← scaled, Adam moments reset). The run
compares their loss curves and dead fractions.
"""

from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, Field

from dictlab.data.store import ActivationStore, StoreBatches
from dictlab.jobs.capture import CaptureConfig, run_capture
from dictlab.metrics.evaluate import reconstruction_metrics
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.claims import Claim, Echo
from dictlab.reproductions.resampling.report import plot_resampling, resampling_claims, resampling_markdown
from dictlab.stopwatch import Stopwatch
from dictlab.training import Member, RecipeConfig, TrainConfig, Trainer, identity_view, read_training_log

ARMS = ("standard", "resampling")


class ResamplingConfig(ReproductionConfig):
    """The store (or what to capture), the ReLU SAEs and the resampling schedule."""

    store: Path | None = Field(
        default=None, description="Existing activation store (default: capture one into OUT/store)."
    )
    model: str = "smollm2"
    module: str = "layer:15"
    corpus: str = "python-docs"
    max_tokens: int = 100_000
    expansion: int = 8
    sparsity_coefficient: float = Field(default=1.0, gt=0, description="ReLU L1 coefficient (on E‖x‖² = d data).")
    lr: float = 4e-3
    batch_size: int = 1024
    steps: int = 300
    resample_every: int = Field(default=50, gt=0, description="Resampling period of the resampling arm (steps).")
    resample_stop_frac: float = 0.7
    dead_window_samples: int = Field(
        default=20_480, gt=0, description="A latent is dead after this many samples silent."
    )
    max_norm_ratio: float | None = Field(
        default=10.0,
        gt=0,
        description="Drop rows over this multiple of the RMS norm: SmolLM2's ~0.02% massive activations "
        "(norms ~140× the median) otherwise spike the loss and kill latents in both arms.",
    )
    log_every: int = 10

    @classmethod
    def quick(cls, seed: int = 0) -> "ResamplingConfig":
        return cls(
            seed=seed,
            model="minilm",
            module="layer:3",
            corpus="wordnet-nouns",
            max_tokens=6000,
            sparsity_coefficient=30.0,
            lr=1e-2,
            batch_size=256,
            steps=100,
            resample_every=20,
            dead_window_samples=2048,
            log_every=5,
        )


class ArmResult(BaseModel):
    arm: str
    steps: list[int]
    loss: list[float]
    dead_fraction: list[float]
    resampled: int
    heldout: dict[str, float]


class ResamplingResults(BaseModel):
    config: ResamplingConfig
    store: str
    width: int
    d_sae: int
    arms: list[ArmResult]
    claims: list[Claim] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


def _store(config: ResamplingConfig, out: Path, echo: Echo) -> Path:
    if config.store is not None:
        return config.store
    run_capture(
        CaptureConfig(
            model=config.model,
            module=(config.module,),
            corpus=config.corpus,
            out=out / "store",
            max_tokens=config.max_tokens,
            seed=config.seed,
        ),
        echo,
    )
    return out / "store"


def run_resampling(config: ResamplingConfig, out: Path, echo: Echo) -> ResamplingResults:
    clock = Stopwatch()
    store = ActivationStore(_store(config, out, echo))
    clock.lap("capture")
    scale = store.width**0.5 / store.entry.stats.rms_norm
    batches = StoreBatches(
        store,
        config.batch_size,
        config.seed,
        chunk_rows=min(4096, config.batch_size * 4),
        scale=scale,
        max_norm_ratio=config.max_norm_ratio,
    )
    cfg = DictionaryConfig(d_in=store.width, d_out=store.width, d_sae=config.expansion * store.width, activation="relu")
    base = RecipeConfig(
        lr=config.lr, sparsity_coefficient=config.sparsity_coefficient, dead_window_samples=config.dead_window_samples
    )
    members = [
        Member(
            arm,
            SparseDictionary(cfg, torch.Generator().manual_seed(config.seed)),
            base.model_copy(
                update={
                    "resample_every": config.resample_every if arm == "resampling" else 0,
                    "resample_stop_frac": config.resample_stop_frac,
                }
            ),
        )
        for arm in ARMS
    ]
    train = TrainConfig(
        batch_size=config.batch_size,
        steps=config.steps,
        seed=config.seed,
        log_every=config.log_every,
        checkpoint_every=100,
    )
    trainer = Trainer(members, batches, train, out / "train")
    summaries = trainer.fit()
    clock.lap("train")
    log = read_training_log(out / "train")
    held = batches.holdout(65_536)
    arms = []
    for member, summary in zip(members, summaries, strict=True):
        lines: list[dict[str, Any]] = [line for line in log if line["member"] == member.name]
        metrics = reconstruction_metrics(member.model.cpu(), held, identity_view)
        arms.append(
            ArmResult(
                arm=member.name,
                steps=[line["step"] for line in lines],
                loss=[line["loss"] for line in lines],
                dead_fraction=[line["dead_fraction"] for line in lines],
                resampled=summary.resampled,
                heldout=metrics,
            )
        )
    results = ResamplingResults(
        config=config, store=str(store.root), width=store.width, d_sae=cfg.d_sae, arms=arms, seconds=dict(clock.seconds)
    )
    results.claims = resampling_claims(results)
    plot_resampling(results, out / "figures" / "resampling.png")
    finish("resampling", out, results, resampling_markdown, clock, echo)
    return results
