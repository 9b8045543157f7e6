"""``dictlab train``: train one dictionary on an activation store, streaming batches in bounded memory."""

import json
import math
import resource
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dictlab.data.store import ActivationStore, LaneBatches
from dictlab.devices import check_device
from dictlab.distributed import all_reduce_, any_rank, broadcast_object, world
from dictlab.distributed.mesh import Mesh
from dictlab.distributed.plan import my_units, on_every_process
from dictlab.files.atomic import atomic_write_text
from dictlab.metrics.evaluate import reconstruction_metrics
from dictlab.models import DictionaryConfig, SparseDictionary, activation_class, activation_names, save_dictionary
from dictlab.models.activations.registry import RegisteredActivation
from dictlab.models.sharding import whole_dictionary
from dictlab.outputs import RunIdentity, claim_output, json_fingerprint
from dictlab.training import Member, RecipeConfig, TrainConfig, Trainer, identity_view
from dictlab.training.config import TRACKING_FIELDS, Precision, Tracking, TrainingPath, WandbMode
from dictlab.training.sharded_checkpoint import POINTER_FILE
from dictlab.training.trainer import CHECKPOINT_FILE

METRICS_FILE = "metrics.json"
TRAIN_DIR = "train"
FEW_STEPS = 100
"""Fewer training steps than this gets a warning: the dictionary has barely moved from its initialisation."""
_NOT_IDENTITY = {
    "store",
    "out",
    "overwrite",
    "progress",
    "device",
    "retain_cpu_memory",
    "tp",
    "prefetch",
    *TRACKING_FIELDS,
}
"""Request fields that do not change what is trained (the store enters the identity by its fingerprint)."""


class StoreTrainRequest(BaseModel):
    """A dictionary to train on one module of an activation store."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    store: Path = Field(description="Activation store folder written by dictlab capture.")
    module: tuple[str, ...] = Field(
        default=(),
        description="Modules of the store to train on, comma-separated, one dictionary each (default: the store's "
        "only module). With several, --out holds one run folder per module; under torchrun module i trains on "
        "process i mod N (dictionary parallelism).",
    )
    out: Path = Field(default=Path("runs/train"), description="Run folder (cfg.json, weights, metrics.json, train/).")
    activation: RegisteredActivation = Field(
        default="topk", description="Sparsifying nonlinearity: a registered activation."
    )
    expansion: int = Field(default=8, gt=0, description="d_sae = expansion × width (ignored when d_sae is set).")
    d_sae: int | None = Field(default=None, gt=0, description="Number of latents.")
    k: int = Field(default=32, gt=0, description="Active latents, for activations that use k (the TopK family).")
    sparsity_coefficient: float = Field(default=0.0, ge=0, description="ReLU L1 / JumpReLU L0 coefficient.")
    target_l0: float | None = Field(
        default=None,
        gt=0,
        description="JumpReLU: train to this L0 (penalty λ·|L0/target − 1|, λ = --sparsity-coefficient; ≈ 10 works).",
    )
    lr: float = Field(default=1e-3, gt=0, description="Adam learning rate.")
    batch_size: int = Field(default=4096, gt=0, description="Rows per step.")
    epochs: float = Field(default=1.0, gt=0, description="Passes over the training rows (ignored when steps is set).")
    steps: int | None = Field(default=None, gt=0, description="Total steps.")
    buffer_rows: int = Field(
        default=262_144,
        gt=0,
        description="Rows of the shuffle buffers over all processes (twice as many are held while --prefetch reads "
        "the next buffer).",
    )
    prefetch: bool = Field(
        default=True,
        description="Read and shuffle the next buffer in a background thread while training consumes this one, so "
        "steps do not wait on the disk (the same batches either way).",
    )
    lanes: int = Field(
        default=1,
        gt=0,
        description="Independent streams the global batch is drawn from; a run can use any number of processes "
        "that divides it (torchrun --nproc_per_node), each reading only its lanes' chunks. 1 = one stream.",
    )
    tp: int = Field(
        default=1,
        gt=0,
        description="Latent shards: split the latents over this many processes (latent parallelism; torchrun's "
        "processes form a (processes / tp) × tp grid). The run is the same at any value.",
    )
    chunk_rows: int = Field(
        default=4096, gt=0, description="Rows per chunk: the unit of the held-out split and shuffle."
    )
    holdout_fraction: float = Field(default=0.05, ge=0, lt=1, description="Share of chunks held out for evaluation.")
    holdout_eval_rows: int = Field(default=262_144, gt=0, description="Held-out rows evaluated at the end (streamed).")
    normalize: bool = Field(
        default=True,
        description="Train on x·sqrt(width)/rms‖x‖ (so E‖x‖² = width) and fold the scale into the saved weights.",
    )
    max_norm_ratio: float | None = Field(
        default=None,
        gt=0,
        description="Drop rows whose norm exceeds this multiple of the store's RMS norm (massive activations; "
        "e.g. 10 for SmolLM2). Default: keep every row.",
    )
    aux_coefficient: float = Field(
        default=1 / 32, ge=0, description="AuxK loss weight (activations with a sparse path)."
    )
    seed: int = Field(default=0, description="Seed of initialisation and batch order.")
    path: TrainingPath = Field(
        default="auto", description="TopK family: sparse, dense, or auto (sparse when k/d_sae ≤ 1/16)."
    )
    precision: Precision = Field(default="fp32", description="fp32, tf32 (CUDA) or bf16 (autocast forward).")
    retain_cpu_memory: bool = Field(
        default=True, description="Keep freed memory for reuse on CPU (faster steps; peak RSS varies by ~0.2 GiB more)."
    )
    device: str = Field(default="cpu", description="cpu or cuda.")
    progress: bool = Field(default=True, description="Show a progress bar.")
    tracking: Tracking = Field(
        default="none",
        description="none, tensorboard or wandb: also log the training metrics to TensorBoard scalars "
        "(OUT/train/tensorboard) or a Weights & Biases run (OUT/train/wandb); needs the tracking extra.",
    )
    wandb_project: str = Field(default="dictlab", min_length=1, description="W&B project (--tracking wandb).")
    wandb_name: str | None = Field(
        default=None, description="W&B run name (--tracking wandb; default: the last two parts of OUT/train)."
    )
    wandb_mode: WandbMode = Field(
        default="offline",
        description="offline or online (--tracking wandb): offline writes the run to OUT/train/wandb only (upload "
        "it later with `wandb sync`); online also streams it to the W&B server (needs `wandb login`).",
    )
    overwrite: bool = Field(
        default=False, description="Replace the run in --out if it was made with other settings or another command."
    )

    @model_validator(mode="after")
    def _options_apply(self) -> "StoreTrainRequest":
        """Refuse options that would do nothing for the chosen activation or device (only those given explicitly)."""
        chosen = activation_class(self.activation)
        given = self.model_fields_set

        def refuse(option: str, applies_to: str) -> None:
            raise ValueError(f"--{option} applies to {applies_to}, not to activation {self.activation!r}")

        if "k" in given and not chosen.uses_k:
            refuse("k", "activations that use k (" + ", ".join(activation_names(uses_k=True)) + ")")
        if chosen.has_sparsity_penalty and self.sparsity_coefficient <= 0:
            raise ValueError(f"activation {self.activation!r} needs --sparsity-coefficient > 0 (its penalty weight)")
        if "sparsity_coefficient" in given and not chosen.has_sparsity_penalty:
            refuse(
                "sparsity-coefficient",
                "penalised activations (" + ", ".join(activation_names(has_sparsity_penalty=True)) + ")",
            )
        if self.target_l0 is not None and not chosen.sparsity_penalty_is_l0:
            refuse("target-l0", "activations with an L0 penalty (" + ", ".join(_l0_penalised()) + ")")
        if not chosen.has_sparse_path:
            for option in ("aux_coefficient", "path"):
                if option in given:
                    refuse(
                        option.replace("_", "-"),
                        "activations with a sparse path (" + ", ".join(activation_names(has_sparse_path=True)) + ")",
                    )
        for option in sorted(given & (TRACKING_FIELDS - {"tracking"})):
            if self.tracking != "wandb":
                raise ValueError(f"--{option.replace('_', '-')} applies to --tracking wandb only")
        if self.precision == "tf32" and not self.device.startswith("cuda"):
            raise ValueError(f"--precision tf32 changes CUDA matmuls only; on {self.device} use fp32 or bf16")
        return self


def _l0_penalised() -> list[str]:
    return [name for name in activation_names() if activation_class(name).sparsity_penalty_is_l0]


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _dictionary_config(request: StoreTrainRequest, width: int) -> DictionaryConfig:
    uses_k = activation_class(request.activation).uses_k
    return DictionaryConfig(
        kind="sae",
        d_in=width,
        d_out=width,
        d_sae=request.d_sae or request.expansion * width,
        activation=request.activation,
        k=request.k if uses_k else None,
    )


def train_identity(request: StoreTrainRequest, stores: list[ActivationStore]) -> RunIdentity:
    """What makes a ``dictlab train`` run folder: every training setting, the module(s) and the store's
    fingerprint."""
    names = [store.entry.name for store in stores]
    config = request.model_dump(mode="json", exclude=_NOT_IDENTITY) | {"module": names[0] if len(names) == 1 else names}
    store = stores[0]
    return RunIdentity(
        command="train",
        config=config,
        inputs={"store": json_fingerprint(store.manifest.model_dump(mode="json"))},
        paths={"store": str(request.store.resolve())},
    )


def _has_checkpoint(out: Path) -> bool:
    train = out / TRAIN_DIR
    return (train / CHECKPOINT_FILE).exists() or (train / POINTER_FILE).exists()


def _has_module_checkpoint(out: Path) -> bool:
    return any(_has_checkpoint(folder) for folder in out.iterdir() if folder.is_dir()) if out.is_dir() else False


@dataclass
class _Prepared:
    """One module's training, validated and ready (nothing written yet)."""

    store: ActivationStore
    batches: LaneBatches
    model: SparseDictionary
    recipe: RecipeConfig
    train: TrainConfig
    scale: float


def train_on_store(request: StoreTrainRequest, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, evaluate on the held-out chunks, save the run folder; resumes from ``out/train`` if present.

    Everything is validated before ``out`` is touched; ``out`` must be new, empty, or a run of this exact request
    (same settings, same store content), else it is refused (``overwrite`` replaces it). With several modules,
    ``out/<module>/`` is one such run folder per module.
    """
    device = check_device(request.device)
    if len(request.module) > 1:
        return _train_modules(request, request.module, device, echo)
    mesh = Mesh.build(request.tp, device.type)
    run = _prepare(request, request.module[0] if request.module else None, mesh, echo)
    identity = train_identity(request, [run.store])
    _check_same_store(identity, request)
    with claim_output(request.out, identity, request.overwrite, _has_checkpoint):
        return _train(request, run, request.out, device, mesh, echo)


def _train_modules(
    request: StoreTrainRequest, modules: tuple[str, ...], device: torch.device, echo: Callable[[str], None]
) -> dict[str, Any]:
    """One dictionary per module, each trained by one process alone (module i on process i mod N)."""
    if request.tp != 1:
        raise ValueError("--tp splits one dictionary's latents; with several --module values each module's "
                         "dictionary is trained by one process (use --tp 1)")  # fmt: skip
    stores = [ActivationStore(request.store, module) for module in modules]
    names = [store.entry.name for store in stores]
    if len(set(names)) != len(names):
        raise ValueError(f"--module names a module twice: {', '.join(names)}")
    identity = train_identity(request, stores)
    _check_same_store(identity, request)
    alone = Mesh.alone()

    def my_modules() -> dict[int, dict[str, Any]]:
        return {
            i: _train(request, _prepare(request, modules[i], alone, echo), request.out / names[i], device, alone, echo)
            for i in my_units(len(modules))
        }

    with claim_output(request.out, identity, request.overwrite, _has_module_checkpoint):
        done: dict[int, dict[str, Any]] = {}
        for part in on_every_process(my_modules):
            done.update(part)
        record = {"modules": {names[i]: done[i] for i in range(len(names))}}
        if world().is_main:
            atomic_write_text(request.out / METRICS_FILE, json.dumps(record, indent=2) + "\n")
        return record


def _check_same_store(identity: RunIdentity, request: StoreTrainRequest) -> None:
    if any_rank(broadcast_object(identity.inputs) != identity.inputs):
        raise ValueError(
            f"the processes opened different stores at --store {request.store}: every process must read the same "
            "store (the same manifest)"
        )


def _prepare(request: StoreTrainRequest, module: str | None, mesh: Mesh, echo: Callable[[str], None]) -> _Prepared:
    """Open ``module`` of the store and build its batches, dictionary and recipe (collective over ``mesh.all``)."""
    store = ActivationStore(request.store, module)
    stats = store.entry.stats
    scale = math.sqrt(store.width) / stats.rms_norm if request.normalize and stats.rms_norm > 0 else 1.0
    batches = LaneBatches(
        store,
        request.batch_size,
        request.lanes,
        request.seed,
        request.buffer_rows,
        request.chunk_rows,
        request.holdout_fraction,
        scale,
        max_norm_ratio=request.max_norm_ratio,
        replicas=mesh.dp,
        prefetch=request.prefetch,
    )
    if batches.max_norm is not None and any_rank(batches.batch(0).shape[0] == 0, mesh.all):
        raise ValueError(
            f"--max-norm-ratio {request.max_norm_ratio} drops every row of the first batch (it keeps rows up to "
            f"{request.max_norm_ratio}× the store's RMS norm {stats.rms_norm:.4g}); use a larger ratio"
        )
    cfg = _dictionary_config(request, store.width)
    model = SparseDictionary(cfg, torch.Generator().manual_seed(request.seed), mesh=mesh)
    recipe = RecipeConfig(
        lr=request.lr,
        sparsity_coefficient=request.sparsity_coefficient,
        target_l0=request.target_l0,
        aux_coefficient=request.aux_coefficient if cfg.has_sparse_path else 0.0,
        path=request.path,
    )
    train = TrainConfig(
        batch_size=request.batch_size,
        epochs=request.epochs,
        steps=request.steps,
        seed=request.seed,
        progress=request.progress,
        checkpoint_every=200,
        precision=request.precision,
        retain_cpu_memory=request.retain_cpu_memory,
        tracking=request.tracking,
        wandb_project=request.wandb_project,
        wandb_name=request.wandb_name,
        wandb_mode=request.wandb_mode,
    )
    echo(
        f"{store.root} [{store.entry.name}]: {batches.n_samples:,} training rows, "
        f"{batches.n_holdout:,} held out, width {store.width}, "
        f"scale {scale:.4g}; buffer {batches.buffer_rows:,} rows"
    )
    steps = train.total_steps(batches.n_samples)
    if steps < FEW_STEPS:
        echo(
            f"warning: only {steps} training step(s) ({batches.n_samples:,} rows, batch {request.batch_size}); "
            "use more --epochs or --steps, or a larger store"
        )
    return _Prepared(store, batches, model, recipe, train, scale)


def _train(
    request: StoreTrainRequest, run: _Prepared, out: Path, device: torch.device, mesh: Mesh, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Train ``run`` into the run folder ``out`` (collective over ``mesh.all``; its first process writes)."""
    store, batches, model, recipe, scale = run.store, run.batches, run.model, run.recipe, run.scale
    trainer = Trainer([Member("sae", model, recipe)], batches, run.train, out / TRAIN_DIR, device, mesh)
    summary = trainer.fit()[0]
    whole = whole_dictionary(model.cpu())  # latent shards: gathered onto rank 0 (None on the others)
    held_rows = min(batches.n_holdout, request.holdout_eval_rows)
    held: dict[str, float] = {}
    if whole is not None and held_rows:
        held = reconstruction_metrics(whole, batches.holdout_chunks(held_rows), identity_view)
    held["rows"] = held_rows
    metadata = {
        "store": str(request.store),
        "module": store.entry.name,
        "model": store.manifest.model,
        "input_scale_folded": scale,
        "recipe": recipe.model_dump(mode="json"),
        "request": request.model_dump(mode="json", exclude={"out", "overwrite", "progress"}),
    }
    writer = mesh.all.rank == 0
    if writer:  # every replica holds the same model; one writes it
        assert whole is not None
        whole.fold_input_scale_(scale)
        save_dictionary(whole, out, metadata)
    record = {
        "module": store.entry.name,
        "steps": summary.steps,
        "samples_per_s": summary.samples_per_s,
        "train_seconds": summary.train_seconds,
        "training_rows": batches.n_samples,
        "store_rows": store.n_rows,
        "store_mib": store.n_rows * store.width * np.dtype(store.manifest.dtype).itemsize / 2**20,
        "buffer_mib": batches.buffer_rows * store.width * 4 / 2**20,
        "scale": scale,
        "holdout": held,
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_mib_per_process": _per_process(peak_rss_mib(), mesh),
        "latent_shards": mesh.tp.size,
    }
    if writer:
        atomic_write_text(out / METRICS_FILE, json.dumps(record, indent=2) + "\n")
    for warning in _result_warnings(held, request):
        echo("warning: " + warning)
    echo(
        f"held-out FVU {held.get('fvu', float('nan')):.4f}, L0 {held.get('l0', float('nan')):.1f}, dead "
        f"{held.get('dead_fraction', float('nan')):.1%}; peak RSS {record['peak_rss_mib']:.0f} MiB -> {out}"
    )
    return record


def _per_process(value: float, mesh: Mesh) -> list[float]:
    """``value`` of every process training this dictionary, in rank order (collective over ``mesh.all``)."""
    values = torch.zeros(mesh.all.size, dtype=torch.float64)
    values[mesh.all.rank] = value
    return all_reduce_(values, group=mesh.all).tolist()


def _result_warnings(held: dict[str, float], request: StoreTrainRequest) -> list[str]:
    """Signs that a finished run is not a usable dictionary."""
    warnings = []
    if held.get("fvu", 0.0) > 1:
        warnings.append(
            f"held-out FVU {held['fvu']:.3g} > 1: the dictionary reconstructs worse than the mean; lower --lr "
            f"(now {request.lr:g})"
        )
    if held.get("dead_fraction", 0.0) > 0.5:
        warnings.append(f"{held['dead_fraction']:.0%} of latents never fired on the held-out rows")
    return warnings
