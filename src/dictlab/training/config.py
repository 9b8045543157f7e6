"""Training configuration: the shared loop (:class:`TrainConfig`) and one dictionary's recipe (:class:`RecipeConfig`).

Several dictionaries can train from one pass over the batches, so what every member shares (batch size, length,
seed, checkpointing) lives in ``TrainConfig`` and what each dictionary chooses for itself (optimiser, penalties,
dead-latent handling, anchoring) lives in ``RecipeConfig``.
"""

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dictlab.training.anchoring import AnchorTerms

TrainingPath = Literal["auto", "sparse", "dense"]
"""TopK-family training path: sparse (one dense product), dense (the reference), auto (sparse when k/d_sae ≤ 1/16)."""

Precision = Literal["fp32", "tf32", "bf16"]
"""fp32; tf32: TF32 matmuls on CUDA; bf16: a bfloat16-autocast forward (CUDA or CPU)."""

Tracking = Literal["none", "tensorboard", "wandb"]
"""Where the logged metrics also go: nowhere else, TensorBoard scalars, or a Weights & Biases run."""

WandbMode = Literal["offline", "online"]
"""offline: the W&B run is only written to disk; online: it is also streamed to the W&B server."""

TRACKING_FIELDS = frozenset({"tracking", "wandb_project", "wandb_name", "wandb_mode"})
"""TrainConfig fields that choose where metrics are reported, not what is trained (outside the resume check)."""


class TrainConfig(BaseModel):
    """The shared training loop."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    batch_size: int = Field(default=1024, gt=0, description="Samples per step, shared by every dictionary in the pass.")
    epochs: float = Field(default=30.0, gt=0, description="Passes over the training split (ignored when steps is set).")
    steps: int | None = Field(default=None, gt=0, description="Total optimiser steps; overrides epochs when set.")
    seed: int = Field(default=0, description="Seed of the batch order and of resampling (model init has its own seed).")
    log_every: int = Field(
        default=50, gt=0, description="Append a metrics line to the JSONL log every this many steps."
    )
    checkpoint_every: int = Field(
        default=500, ge=0, description="Write a resumable checkpoint every this many steps (0: only at the end)."
    )
    progress: bool = Field(default=True, description="Show a progress bar.")
    retain_cpu_memory: bool = Field(
        default=True,
        description="On CPU with glibc, keep freed memory for reuse instead of returning it to the OS (each step's "
        "large tensors then skip fresh page faults; ~25 % faster steps; RSS stays at its peak).",
    )
    precision: Precision = Field(
        default="fp32",
        description="fp32; tf32: TF32 matmuls on CUDA (Ampere or newer); bf16: autocast every forward pass to "
        "bfloat16 (CUDA or CPU). Parameters and Adam state stay fp32 in every mode.",
    )
    tracking: Tracking = Field(
        default="none",
        description="none: only the JSONL log; tensorboard or wandb: also send its every line to TensorBoard "
        "scalars (workdir/tensorboard) or a Weights & Biases run (workdir/wandb). Needs the tracking extra.",
    )
    wandb_project: str = Field(default="dictlab", min_length=1, description="W&B project of the run.")
    wandb_name: str | None = Field(
        default=None, description="W&B run name (default: the last two parts of the workdir's path)."
    )
    wandb_mode: WandbMode = Field(
        default="offline",
        description="offline: the W&B run is written to workdir/wandb only (upload it later with `wandb sync`); "
        "online: also streamed to the W&B server (needs `wandb login`).",
    )

    def total_steps(self, n_samples: int) -> int:
        """Steps for ``n_samples`` training rows: ``steps`` if set, else ⌈epochs · n_samples / batch_size⌉."""
        if self.steps is not None:
            return self.steps
        return max(1, -(-int(self.epochs * n_samples) // self.batch_size))


class RecipeConfig(BaseModel):
    """How one dictionary is trained."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    lr: float = Field(default=1e-3, gt=0, description="Adam learning rate after warm-up.")
    adam_betas: tuple[float, float] = Field(default=(0.9, 0.999), description="Adam (β1, β2).")
    warmup_frac: float = Field(default=0.01, ge=0, le=1, description="Linear lr warm-up over this fraction of steps.")
    decay_frac: float = Field(
        default=0.2, ge=0, le=1, description="Linear lr decay to 0 over this final fraction of steps."
    )
    sparsity_coefficient: float = Field(
        default=0.0, ge=0, description="λ of ReLU's norm-weighted L1 or JumpReLU's L0 (unused by the TopK family)."
    )
    target_l0: float | None = Field(
        default=None,
        gt=0,
        description="JumpReLU: steer the batch L0 to this value; the L0 penalty λ·L0 becomes λ·|L0/target_l0 − 1| "
        "(λ = sparsity_coefficient; ≈ 10 lands within a few per cent, a larger λ changes little). None: the plain "
        "L0 penalty. Not for ReLU (an L1 penalty) or the TopK family (k sets L0).",
    )
    sparsity_warmup_frac: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Ramp the sparsity coefficient linearly from 0 over this fraction of steps.",
    )
    path: TrainingPath = Field(
        default="auto",
        description="Training path of the TopK family: sparse (only the dense encoder product; every other product "
        "over the k active latents), dense (the reference), or auto (sparse when k/d_sae ≤ 1/16).",
    )
    decoder_norm: Literal["unit", "free"] = Field(
        default="unit",
        description="unit: decoder rows projected to unit norm after every step (radial gradient removed); "
        "free: unconstrained rows, the L1 penalty is weighted by their norms instead.",
    )
    aux_coefficient: float = Field(
        default=0.0,
        ge=0,
        description="TopK family: weight of the AuxK loss on dead latents (Gao et al. use 1/32; 0 = off).",
    )
    aux_k: int | None = Field(default=None, gt=0, description="TopK family: latents used by AuxK (default d_in // 2).")
    dead_window_samples: int = Field(
        default=100_000, gt=0, description="A latent is dead when it has not fired within this many training samples."
    )
    resample_every: int = Field(
        default=0, ge=0, description="Resample dead latents every this many steps (Bricken et al. 2023); 0 = never."
    )
    resample_stop_frac: float = Field(
        default=0.5, ge=0, le=1, description="No resampling after this fraction of training (let latents settle)."
    )
    resample_pool: int = Field(default=8192, gt=0, description="Training samples scored to pick resampling directions.")
    resample_encoder_scale: float = Field(
        default=0.2, gt=0, description="Resampled encoder columns get this times the mean alive encoder-column norm."
    )
    anchor_coefficient: float = Field(
        default=0.1,
        ge=0,
        description="λ_anchor of feature anchoring (paper: 0.1 on the bench); used only with anchors.",
    )
    anchor_terms: AnchorTerms = Field(
        default="both",
        description="Anchor terms: both (the paper's L_anchor), encoder (W_E rows) or decoder (W_D columns) only.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.warmup_frac + self.decay_frac > 1:
            raise ValueError("warmup_frac + decay_frac must not exceed 1")
        return self
