"""Train one or several dictionaries from a single pass over shared batches.

Each :class:`Member` is a dictionary with its own recipe, optimiser, data view and optional anchors; every step
draws one batch and updates every member on it. The loop is deterministic under ``TrainConfig.seed`` and
resumable: a checkpoint (weights, optimiser and scheduler state, firing statistics, RNG state, step) is written
atomically, and a run killed at any moment resumes from its last checkpoint with the JSONL log cut back to it
(to nothing when it died before its first checkpoint). A loss that becomes non-finite, or a reconstruction error
that grows past :data:`DIVERGENCE_FACTOR` times its first step's, stops the run with :class:`TrainingDiverged`;
the last checkpoint written before stays as it was.
"""

import contextlib
import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor

from dictlab.distributed import all_reduce_, any_rank, local_share, sum_gradients_, world
from dictlab.distributed.mesh import Mesh
from dictlab.files.atomic import atomic_path, remove_stale_temporaries
from dictlab.files.json_files import read_json_object
from dictlab.files.memory import check_allocation
from dictlab.files.tensors import load_tensor_file
from dictlab.models.dictionary import DictionaryLoss, SparseDictionary
from dictlab.outputs.identity import json_fingerprint
from dictlab.progress import progress_bar
from dictlab.training.anchoring import Anchors, anchor_loss
from dictlab.training.batches import BatchSource, to_device
from dictlab.training.config import TRACKING_FIELDS, RecipeConfig, TrainConfig
from dictlab.training.cpu_memory import retain_freed_memory
from dictlab.training.dead_latents import FiringTracker, auxk_loss, resample_dead_latents
from dictlab.training.precision import forward_autocast, tf32_matmuls
from dictlab.training.schedules import lr_multiplier, warmup_multiplier
from dictlab.training.sharded_checkpoint import (
    POINTER_FILE,
    STATE_FILE,
    Entry,
    current_folder,
    generator_state,
    load_sharded,
    remove_sharded,
    save_sharded,
    set_generator_state,
)
from dictlab.training.tracking import MetricsTracker, open_tracker, require

View = Callable[[Tensor], tuple[Tensor, Tensor]]
"""Maps a batch of source rows to (x_in [batch, d_in], x_out [batch, d_out])."""

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train_log.jsonl"
DIVERGENCE_FACTOR = 100.0
"""A member whose reconstruction error exceeds this multiple of its first step's has diverged."""
OPTIMISER_BYTES_PER_PARAMETER = 16
"""float32 weight, gradient and Adam's two moments."""


_CHECKPOINT_KEYS = {"step", "total_steps", "members", "generator", "log_size"}


class TrainingDiverged(ValueError):
    """Training stopped because a member's loss became non-finite or its reconstruction error blew up."""


def identity_view(rows: Tensor) -> tuple[Tensor, Tensor]:
    """SAE view of activation rows: input = target."""
    return rows, rows


def read_training_log(workdir: str | Path) -> list[dict[str, Any]]:
    """The metric lines a :class:`Trainer` appended to ``workdir``'s JSONL log, in order ([] if none)."""
    path = Path(workdir) / LOG_FILE
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as err:
        raise ValueError(f"training log {path} is corrupt: {err}") from err


@dataclass
class Member:
    """One dictionary in a training pass."""

    name: str
    model: SparseDictionary
    recipe: RecipeConfig = field(default_factory=RecipeConfig)
    view: View = identity_view
    anchors: Anchors | None = None
    probe: Callable[[SparseDictionary], dict[str, float]] | None = None
    """Extra metrics (e.g. ground-truth recovery) computed from the model at every log step, under no_grad."""


@dataclass
class MemberSummary:
    """What a finished member reports: steps, time spent on its own updates, throughput, last logged metrics."""

    name: str
    steps: int
    train_seconds: float
    samples_per_s: float
    last: dict[str, float]
    resampled: int


@dataclass(frozen=True)
class StepTerms:
    """One step's global loss terms: ``values`` [T] float64 on the training device, named by ``names``, plus the
    shared settings (plain floats). Nothing here has been read back to the host."""

    names: list[str]
    values: Tensor
    settings: dict[str, float]

    def get(self, name: str) -> Tensor:
        return self.values[self.names.index(name)]

    def read(self) -> dict[str, float]:
        """The terms as floats (one device→host copy)."""
        return {**dict(zip(self.names, self.values.tolist(), strict=True)), **self.settings}


class _MemberState:
    """Per-member optimiser, scheduler, firing tracker and timers."""

    def __init__(self, member: Member, total_steps: int, device: torch.device) -> None:
        self.member = member
        recipe = member.recipe
        cfg = member.model.cfg
        if member.anchors is not None:
            member.anchors.check_fits(member.model)
            member.anchors = member.anchors.to(device)
        if cfg.has_sparsity_penalty and recipe.sparsity_coefficient == 0:
            raise ValueError(f"member {member.name!r}: activation {cfg.activation!r} needs sparsity_coefficient > 0")
        if recipe.target_l0 is not None:
            if not member.model.activation.sparsity_penalty_is_l0:
                raise ValueError(
                    f"member {member.name!r}: target_l0 needs an activation with an L0 penalty (jumprelu), not "
                    f"{cfg.activation!r}" + (" (its L0 is set by k)" if cfg.uses_k else "")
                )
            if recipe.target_l0 > cfg.d_sae:
                raise ValueError(f"member {member.name!r}: target_l0 {recipe.target_l0:g} exceeds d_sae {cfg.d_sae}")
        if recipe.path == "sparse" and not member.model.has_sparse_path:
            raise ValueError(
                f"member {member.name!r}: path='sparse' needs a TopK-family activation, not {cfg.activation!r}"
            )
        self.optimizer = torch.optim.Adam(member.model.parameters(), lr=recipe.lr, betas=recipe.adam_betas)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_multiplier(step, total_steps, recipe.warmup_frac, recipe.decay_frac),
        )
        self.tracker = FiringTracker(member.model.latents.size, recipe.dead_window_samples, device)
        self.k_aux = recipe.aux_k or max(1, cfg.d_in // 2)
        self.train_seconds = 0.0
        self.resampled = 0
        self._first_reconstruction: Tensor | None = None
        """The first step's global reconstruction error, kept on the device."""
        self._diverged: Tensor | None = None
        """[3] float64 on the device: (step, reconstruction, loss) of the first diverged step since the last
        check, step −1 while none."""
        self.pending: StepTerms | None = None
        """The last step's terms, still on the device."""
        self.last: dict[str, float] = {}
        self.dead_fraction = 0.0
        """Of all the member's latents, at the last log step."""

    def watch_divergence(self, terms: "StepTerms", step: int) -> None:
        """Record on the device whether this step's loss is not finite or its reconstruction error exceeds
        DIVERGENCE_FACTOR × the first step's; no host synchronisation."""
        value, total = terms.get("reconstruction"), terms.get("loss")
        if self._first_reconstruction is None:
            self._first_reconstruction = value.clone()
        bad = ~torch.isfinite(total) | (value > DIVERGENCE_FACTOR * self._first_reconstruction)
        now = torch.stack([torch.full_like(value, step), value, total])
        if self._diverged is None:
            self._diverged = torch.full_like(now, -1.0)
        first = bad & (self._diverged[0] < 0)
        self._diverged = torch.where(first, now, self._diverged)

    def divergence(self) -> tuple[int, float, float] | None:
        """(step, reconstruction, loss) of the first diverged step since the last call, read from the device."""
        if self._diverged is None:
            return None
        step, value, total = self._diverged.tolist()
        self._diverged.fill_(-1.0)
        return None if step < 0 else (int(step), value, total)

    @property
    def first_reconstruction(self) -> float | None:
        """The first step's reconstruction error (read from the device)."""
        return None if self._first_reconstruction is None else float(self._first_reconstruction)

    def read_terms(self) -> None:
        """Copy the last step's terms to the host (``last``): at log and checkpoint steps only."""
        if self.pending is not None:
            self.last = self.pending.read()

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.member.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "tracker": self.tracker.state_dict(),
            **self.progress(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.member.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.tracker.load_state_dict(state["tracker"])
        self.load_progress(state)

    def progress(self) -> dict[str, Any]:
        """The member's plain (JSON-ready) counters and last metrics."""
        return {
            "train_seconds": self.train_seconds,
            "resampled": self.resampled,
            "first_reconstruction": self.first_reconstruction,
            "last": self.last,
        }

    def load_progress(self, state: dict[str, Any]) -> None:
        self.train_seconds = state["train_seconds"]
        self.resampled = state["resampled"]
        first = state.get("first_reconstruction")
        device = self.tracker.samples_since_fired.device
        self._first_reconstruction = None if first is None else torch.tensor(first, dtype=torch.float64, device=device)
        self.last = state["last"]


class Trainer:
    """Trains ``members`` on ``batches``; ``workdir`` (optional) receives checkpoints, the JSONL log and the
    tracked run (``config.tracking``)."""

    def __init__(
        self,
        members: list[Member],
        batches: BatchSource,
        config: TrainConfig,
        workdir: str | Path | None = None,
        device: str | torch.device = "cpu",
        mesh: Mesh | None = None,
    ) -> None:
        if not members:
            raise ValueError("nothing to train: no members")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"member names must be unique, got {names}")
        if batches.batch_size != config.batch_size:
            raise ValueError(f"batches have size {batches.batch_size}, config says {config.batch_size}")
        if config.tracking != "none" and workdir is None:
            raise ValueError(f"tracking={config.tracking!r} writes into the workdir: give one")
        self.device = torch.device(device)
        self.world = world()
        self.mesh = mesh if mesh is not None else Mesh.data_parallel()
        self.writer = self.mesh.all.rank == 0
        """Whether this process writes the log, checkpoints and tracked run (the first of the processes training
        together)."""
        if self.writer:
            require(config.tracking)
        for member in members:
            if member.model.mesh != self.mesh:
                raise ValueError(f"member {member.name!r}: its dictionary was built for another process layout")
            if member.probe is not None and self.mesh.tp.size > 1:
                raise ValueError(f"member {member.name!r}: probes need whole dictionaries, not latent shards")
        if self.device.type == "cpu" and config.retain_cpu_memory:
            retain_freed_memory()
        self.config = config
        self.batches = batches
        self.total_steps = config.total_steps(batches.n_samples)
        self.workdir = Path(workdir) if workdir is not None else None
        n_parameters = sum(m.model.cfg.n_parameters * m.model.latents.size // m.model.cfg.d_sae for m in members)
        check_allocation(
            OPTIMISER_BYTES_PER_PARAMETER * n_parameters,
            f"training {n_parameters:,} parameters with Adam ({OPTIMISER_BYTES_PER_PARAMETER} bytes each)",
        )
        for member in members:
            member.model.to(self.device).train()
        self.states = [_MemberState(m, self.total_steps, self.device) for m in members]
        self._check_widths()
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self._initialised = False
        self._resumed_log_size = 0
        if self.workdir is not None:
            if self.writer and self.workdir.is_dir():
                remove_stale_temporaries(self.workdir)
            if (self.workdir / CHECKPOINT_FILE).exists() or current_folder(self.workdir) is not None:
                self._load_checkpoint()
            elif self.writer:  # killed before its first checkpoint: the log's lines would be repeated
                (self.workdir / LOG_FILE).unlink(missing_ok=True)

    # ---------------------------------------------------------------- data
    def _views(self, rows: Tensor) -> list[tuple[Tensor, Tensor]]:
        rows = to_device(rows, self.device)
        cache: dict[int, tuple[Tensor, Tensor]] = {}
        out = []
        for state in self.states:
            view = state.member.view
            if id(view) not in cache:
                cache[id(view)] = view(rows)
            out.append(cache[id(view)])
        return out

    def _check_widths(self) -> None:
        for state, (x_in, x_out) in zip(self.states, self._views(self.batches.batch(0)), strict=True):
            cfg = state.member.model.cfg
            if x_in.shape[-1] != cfg.d_in or x_out.shape[-1] != cfg.d_out:
                raise ValueError(
                    f"member {state.member.name!r}: the data gives inputs of width {x_in.shape[-1]} and targets of "
                    f"width {x_out.shape[-1]}, the dictionary expects d_in={cfg.d_in}, d_out={cfg.d_out}"
                )

    def _step_rows(self, step: int) -> tuple[Tensor, int]:
        """(this process's rows of step ``step``, the global batch's row count).

        A source that serves each process its own rows (``serves_local_rows``, e.g. a laned store stream) is used
        as it is; any other gives the whole batch, of which each process takes its contiguous share.
        """
        rows = self.batches.batch(step)
        if getattr(self.batches, "serves_local_rows", False):
            if self.mesh.dp.size == 1:
                return rows, rows.shape[0]
            return rows, int(all_reduce_(torch.tensor(rows.shape[0]), group=self.mesh.dp).item())
        return local_share(rows, self.mesh.dp), rows.shape[0]

    @torch.no_grad()
    def _initialise_biases(self) -> None:
        """b_dec ← mean target of the first (global) batch (standard initialisation)."""
        rows, n_global = self._step_rows(0)
        for state, (_, x_out) in zip(self.states, self._views(rows), strict=True):
            model = state.member.model
            if isinstance(model.b_dec, torch.nn.Parameter):
                if self.mesh.dp.size > 1:
                    model.b_dec.copy_(all_reduce_(x_out.sum(dim=0), group=self.mesh.dp) / n_global)
                else:
                    model.b_dec.copy_(x_out.mean(dim=0))
        self._initialised = True

    # ---------------------------------------------------------------- one update
    def _losses(
        self, state: _MemberState, x_in: Tensor, x_out: Tensor, share: float
    ) -> tuple[DictionaryLoss, Tensor, dict[str, Tensor | float]]:
        """The member's forward pass and every loss term (run under the configured autocast).

        ``share`` is this replica's fraction of the global batch's rows (1 in one process). The returned total is
        what this process differentiates: summing its gradients over the replicas gives exactly the gradient of the
        whole batch in one process (batch means are weighted by ``share``, AuxK divides by the global residual
        energy, the batch-independent anchor term is split evenly over replicas). Every latent shard of a replica
        differentiates the same reconstruction terms (their gradients reach each shard's own latents) plus its own
        latents' sparsity and anchor terms. The reported terms are this process's part of the global value: summed
        over every process they give the values of one process.
        """
        member, model, recipe = state.member, state.member.model, state.member.recipe
        shards = self.mesh.tp.size  # terms every shard of a replica computes in full are reported once
        out = model.loss(x_in, x_out, sparse={"auto": None, "sparse": True, "dense": False}[recipe.path])
        reconstruction = out.reconstruction * share
        total = replicated = reconstruction
        terms: dict[str, Tensor | float] = {"reconstruction": reconstruction / shards}
        if out.sparsity is not None:
            coefficient = recipe.sparsity_coefficient * warmup_multiplier(
                self.step, self.total_steps, recipe.sparsity_warmup_frac
            )
            sparsity = out.sparsity * share
            target = recipe.target_l0
            total = total + coefficient * (sparsity if target is None else self._l0_gap(sparsity, target, share))
            terms["sparsity"] = sparsity
            terms["sparsity_coefficient"] = coefficient  # the same on every rank: not summed
        if model.cfg.has_sparse_path and recipe.aux_coefficient > 0:
            dead = state.tracker.dead_mask()
            fixed = self.device.type == "cuda"  # no host read there; the cheaper exact form elsewhere
            aux = auxk_loss(model, x_in, out.pre, x_out - out.x_hat, dead, state.k_aux, fixed_width=fixed)
            total = total + recipe.aux_coefficient * aux
            replicated = replicated + recipe.aux_coefficient * aux
            terms["auxk"] = aux / shards
        if member.anchors is not None and recipe.anchor_coefficient > 0:
            anchor = anchor_loss(model, member.anchors, recipe.anchor_terms) / self.mesh.dp.size
            total = total + recipe.anchor_coefficient * anchor
            terms["anchor"] = anchor
        terms["loss"] = total if shards == 1 else total - replicated * (1 - 1 / shards)
        terms["l0"] = out.mean_l0() * share
        return out, total, terms

    def _l0_gap(self, sparsity: Tensor, target: float, share: float) -> Tensor:
        """This process's part of |L0/target − 1|, L0 the global batch's (``sparsity`` is this process's part).

        Written sign(L0 − target)·(L0_part/target − c) with the parts c summing to 1 over the processes, so the
        parts add up to the value and every process's gradient has the sign of the global L0's deviation.
        """
        l0 = sparsity.detach().float()
        if self.mesh.all.size > 1:
            l0 = all_reduce_(l0.clone(), group=self.mesh.all)
        return torch.sign(l0 - target) * (sparsity / target - share / self.mesh.tp.size)

    def _global_terms(self, local: dict[str, Tensor | float]) -> StepTerms:
        """Sum the ranks' parts of the tensor terms in one all-reduce of a float64 vector that stays on the device
        (plain floats are shared settings, passed through)."""
        names = [k for k, v in local.items() if isinstance(v, Tensor)]
        values = torch.stack([cast(Tensor, local[k]).detach().double().reshape(()) for k in names])
        if self.mesh.all.size > 1:
            values = all_reduce_(values, group=self.mesh.all)
        settings = {k: float(v) for k, v in local.items() if not isinstance(v, Tensor)}
        return StepTerms(names, values, settings)

    def _update(self, state: _MemberState, x_in: Tensor, x_out: Tensor, n_global: int) -> StepTerms:
        model, recipe = state.member.model, state.member.recipe
        with tf32_matmuls(self.config.precision):
            with forward_autocast(self.config.precision, self.device):
                out, total, local_terms = self._losses(state, x_in, x_out, x_in.shape[0] / n_global)
            terms = self._global_terms(local_terms)
            state.watch_divergence(terms, self.step)
            state.optimizer.zero_grad(set_to_none=True)
            total.backward()
        sum_gradients_(model.parameters(), self.mesh.dp)
        if recipe.decoder_norm == "unit":
            model.remove_radial_decoder_grad_()
        state.optimizer.step()
        state.scheduler.step()
        if recipe.decoder_norm == "unit":
            model.normalize_decoder_()
        fired = out.fired()
        if self.mesh.dp.size > 1:
            fired = all_reduce_(fired.to(torch.uint8), "max", self.mesh.dp).bool()
        state.tracker.update(fired, n_global)
        return terms

    def _check_divergence(self) -> None:
        """Raise TrainingDiverged if a member diverged since the last check (read from the device: called at log
        and checkpoint steps, never between). The terms are global, so every rank raises at once."""
        for state in self.states:
            found = state.divergence()
            if found is None:
                continue
            step, value, total = found
            first = state.first_reconstruction
            what = (
                f"loss became {total}"
                if not math.isfinite(total)
                else f"reconstruction error {value:.4g} exceeds {DIVERGENCE_FACTOR:g}× its first step's ({first:.4g})"
            )
            kept = (
                "the last checkpoint is kept"
                if self.workdir is not None and (self.workdir / CHECKPOINT_FILE).exists()
                else "no checkpoint was written"
            )
            raise TrainingDiverged(
                f"training diverged: member {state.member.name!r}: {what} at step {step} (learning rate "
                f"{state.member.recipe.lr:g}); {kept}. Lower the learning rate"
            )

    def _maybe_resample(self, state: _MemberState) -> None:
        recipe = state.member.recipe
        due = recipe.resample_every and (self.step + 1) % recipe.resample_every == 0
        if not due or self.step >= recipe.resample_stop_frac * self.total_steps:
            return
        dead = state.tracker.dead_mask()
        if not any_rank(bool(dead.any()), self.mesh.tp):
            return
        pool = to_device(self.batches.sample(recipe.resample_pool, self.generator), self.device)
        x_in, x_out = state.member.view(pool)
        count = resample_dead_latents(
            state.member.model,
            state.optimizer,
            dead,
            x_in,
            x_out,
            recipe.resample_encoder_scale,
            self.generator,
        )
        state.tracker.samples_since_fired[dead] = 0
        state.resampled += count

    # ---------------------------------------------------------------- loop
    def fit(self, until_step: int | None = None) -> list[MemberSummary]:
        """Train to ``total_steps`` (or stop early after ``until_step`` steps, e.g. to simulate a kill)."""
        stop = self.total_steps if until_step is None else min(until_step, self.total_steps)
        bar = progress_bar(
            total=self.total_steps,
            initial=self.step,
            desc="train " + "/".join(s.member.name for s in self.states),
            unit=" steps",
            enabled=self.config.progress and self.world.is_main,
        )
        for state in self.states:
            state.member.model.train()  # a fit that continues an earlier one (which ended in eval mode)
        with self._closing_batches(), bar, self._tracking(stop) as tracker:
            if not self._initialised:
                self._initialise_biases()
            while self.step < stop:
                rows, n_global = self._step_rows(self.step)
                if any_rank(rows.shape[0] == 0, self.mesh.all):
                    raise ValueError(
                        f"the batch of step {self.step} leaves a process without rows (rows were filtered out, or "
                        "the batch is smaller than the number of processes)"
                    )
                views = self._views(rows)
                for state, (x_in, x_out) in zip(self.states, views, strict=True):
                    started = time.perf_counter()
                    state.pending = self._update(state, x_in, x_out, n_global)
                    self._maybe_resample(state)
                    state.train_seconds += time.perf_counter() - started
                self.step += 1
                bar.update(1)
                logging = self.step % self.config.log_every == 0 or self.step == self.total_steps
                periodic = self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0
                if logging or periodic:
                    self._check_divergence()  # before a checkpoint could keep diverged weights
                    for state in self.states:
                        state.read_terms()
                if logging:
                    for state in self.states:
                        state.dead_fraction = state.tracker.dead_fraction(self.mesh.tp)
                    records = self._log()
                    if tracker is not None:
                        tracker.log(self.step, records)
                    bar.set_postfix_str(self._postfix(), refresh=False)
                if periodic or self.step == self.total_steps:
                    self._save_checkpoint()
        self._check_divergence()  # also when stopped early, between checks
        for state in self.states:
            state.read_terms()
            state.member.model.eval()
        return self.summaries()

    @contextlib.contextmanager
    def _tracking(self, stop: int) -> Iterator[MetricsTracker | None]:
        """The tracker of a fit that trains until ``stop`` (None without tracking, on the other processes, or with
        nothing left to train), closed when the fit ends or fails."""
        tracker = None
        if self.workdir is not None and self.writer and self.step < stop:
            tracker = open_tracker(self.config, self.workdir, self.step + 1, self._settings())
        try:
            yield tracker
        finally:
            if tracker is not None:
                tracker.close()

    @contextlib.contextmanager
    def _closing_batches(self) -> Iterator[None]:
        """Close the batch source (if it can be: a store's batches end their prefetch thread) when the fit ends or
        fails."""
        try:
            yield
        finally:
            close = getattr(self.batches, "close", None)
            if close is not None:
                close()

    def summaries(self) -> list[MemberSummary]:
        samples = self.step * self.config.batch_size
        return [
            MemberSummary(
                name=s.member.name,
                steps=self.step,
                train_seconds=s.train_seconds,
                samples_per_s=samples / s.train_seconds if s.train_seconds else 0.0,
                last=dict(s.last),
                resampled=s.resampled,
            )
            for s in self.states
        ]

    def _postfix(self) -> str:
        def joined(key: str, fmt: str) -> str:
            return "/".join(format(s.last.get(key, float("nan")), fmt) for s in self.states)

        dead = "/".join(f"{s.dead_fraction:.0%}" for s in self.states)
        return f"loss={joined('loss', '.3g')} L0={joined('l0', '.1f')} dead={dead}"

    # ---------------------------------------------------------------- persistence
    def _log(self) -> list[dict[str, Any]]:
        """Append this step's line of every member to the JSONL log; returns the lines ([] when nothing logs)."""
        if self.workdir is None or not self.writer:
            return []
        records = [self._record(state) for state in self.states]
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.workdir / LOG_FILE, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record) + "\n" for record in records)
        return records

    def _record(self, state: _MemberState) -> dict[str, Any]:
        """A member's metrics at this log step, from host values (plus its probe's, under no_grad)."""
        record = {
            "step": self.step,
            "member": state.member.name,
            "lr": state.scheduler.get_last_lr()[0],
            "dead_fraction": state.dead_fraction,
            "resampled": state.resampled,
            **state.last,
        }
        if state.member.probe is not None:
            with torch.no_grad():
                record.update(state.member.probe(state.member.model))
        return record

    def _log_size(self) -> int:
        path = None if self.workdir is None else self.workdir / LOG_FILE
        return path.stat().st_size if path is not None and path.exists() else 0

    def _save_checkpoint(self) -> None:
        if self.workdir is None:
            return
        if self.mesh.tp.size > 1:  # every process writes its shards (collective)
            save_sharded(self.workdir, self.step, self._entries(), self._sharded_state(), self.mesh)
            if self.writer:
                (self.workdir / CHECKPOINT_FILE).unlink(missing_ok=True)
            return
        if not self.writer:
            return
        members = {s.member.name: s.state_dict() for s in self.states}
        payload = self._checkpoint_record(members, self.generator.get_state())
        with atomic_path(self.workdir / CHECKPOINT_FILE) as tmp:
            torch.save(payload, tmp)
        remove_sharded(self.workdir)

    def _entries(self) -> dict[str, Entry]:
        """Every tensor of the training state, named, with its latent dimension (sharded checkpoints)."""
        entries: dict[str, Entry] = {}
        for state in self.states:
            name, model = state.member.name, state.member.model
            dims = model.latent_dims()
            for key, tensor in model.state_dict().items():
                entries[f"{name}/model/{key}"] = Entry(tensor, dims.get(key))
            for key, param in model.named_parameters():
                adam = state.optimizer.state[param]
                if not adam:  # a fresh optimiser about to be loaded: Adam's own initial state
                    adam.update(
                        step=torch.tensor(0.0), exp_avg=torch.zeros_like(param), exp_avg_sq=torch.zeros_like(param)
                    )
                entries[f"{name}/adam/{key}/step"] = Entry(adam["step"], None)
                for moment in ("exp_avg", "exp_avg_sq"):
                    entries[f"{name}/adam/{key}/{moment}"] = Entry(adam[moment], dims.get(key))
            entries[f"{name}/tracker/samples_since_fired"] = Entry(state.tracker.samples_since_fired, 0)
        return entries

    def _sharded_state(self) -> dict[str, Any]:
        """The non-tensor training state (a sharded checkpoint's JSON part)."""
        members = {
            s.member.name: {
                "param_groups": [{k: v for k, v in g.items() if k != "params"} for g in s.optimizer.param_groups],
                "scheduler": s.scheduler.state_dict(),
                **s.progress(),
            }
            for s in self.states
        }
        return self._checkpoint_record(members, generator_state(self.generator))

    def _checkpoint_record(self, members: dict[str, Any], generator: object) -> dict[str, Any]:
        """What every checkpoint holds beside the members' state."""
        return {
            "step": self.step,
            "total_steps": self.total_steps,
            "members": members,
            "generator": generator,
            "log_size": self._log_size(),
            "settings": self._settings_fingerprint(),
        }

    def _settings(self) -> dict[str, Any]:
        """What determines the run: every member's architecture and recipe, and the loop's config (progress
        display, CPU memory retention and tracking excluded)."""
        members = {
            s.member.name: {
                "dictionary": s.member.model.cfg.model_dump(mode="json"),
                "recipe": s.member.recipe.model_dump(mode="json"),
            }
            for s in self.states
        }
        loop = self.config.model_dump(mode="json", exclude={"progress", "retain_cpu_memory", *TRACKING_FIELDS})
        return {"members": members, "train": loop}

    def _settings_fingerprint(self) -> str:
        """Fingerprint of :meth:`_settings`: a checkpoint resumes only under the same."""
        return json_fingerprint(self._settings())

    def _load_checkpoint(self) -> None:
        assert self.workdir is not None
        folder = current_folder(self.workdir)
        whole = self.workdir / CHECKPOINT_FILE
        payload = None
        if whole.exists():
            payload = load_tensor_file(whole, "training checkpoint", map_location=self.device)
            if not isinstance(payload, dict) or not payload.keys() >= _CHECKPOINT_KEYS:
                raise ValueError(f"checkpoint {whole} is not a dictlab training checkpoint (its keys are wrong)")
        sharded = folder is not None and (payload is None or _pointer_step(self.workdir) > payload["step"])
        if sharded:
            assert folder is not None
            self._load_sharded(folder)
        else:
            assert payload is not None
            if self.mesh.tp.size > 1:
                raise ValueError(
                    f"checkpoint {whole} was written by a run whose dictionaries were not split over latent shards; "
                    "resume it with --tp 1"
                )
            self._load_whole(whole, payload)
        log = self.workdir / LOG_FILE
        if self.writer and log.exists() and log.stat().st_size > self._resumed_log_size:
            with open(log, "r+b") as handle:
                handle.truncate(self._resumed_log_size)

    def _check_saved(self, where: Path, members: set[str], total_steps: int, settings: str | None) -> None:
        expected = {s.member.name for s in self.states}
        if members != expected:
            raise ValueError(f"checkpoint {where} holds members {sorted(members)}, this run has {sorted(expected)}")
        if total_steps != self.total_steps:
            raise ValueError(f"checkpoint {where} was made for {total_steps} steps, this run has {self.total_steps}")
        if settings is not None and settings != self._settings_fingerprint():
            raise ValueError(
                f"checkpoint {where} was made with other dictionaries, recipes or training settings; resume with the "
                "settings that made it, or train into a new folder"
            )

    def _load_whole(self, path: Path, payload: dict[str, Any]) -> None:
        self._check_saved(path, set(payload["members"]), payload["total_steps"], payload.get("settings"))
        for state in self.states:
            try:
                state.load_state_dict(payload["members"][state.member.name])
            except (KeyError, RuntimeError, ValueError, TypeError) as err:
                raise ValueError(f"checkpoint {path} does not fit member {state.member.name!r}: {err}") from err
        self.generator.set_state(payload["generator"])
        self.step = payload["step"]
        self._resumed_log_size = payload["log_size"]
        self._initialised = True

    def _load_sharded(self, folder: Path) -> None:
        saved = read_json_object(folder / STATE_FILE, ValueError, "the checkpoint was not completed")
        self._check_saved(folder, set(saved.get("members", {})), saved.get("total_steps", -1), saved.get("settings"))
        load_sharded(folder, self._entries(), self.mesh)
        for state in self.states:
            record = saved["members"][state.member.name]
            for group, values in zip(state.optimizer.param_groups, record["param_groups"], strict=True):
                group.update({k: tuple(v) if k == "betas" else v for k, v in values.items()})
            state.scheduler.load_state_dict(record["scheduler"])
            state.load_progress(record)
        set_generator_state(self.generator, saved["generator"])
        self.step = saved["step"]
        self._resumed_log_size = saved["log_size"]
        self._initialised = True


def _pointer_step(workdir: Path) -> int:
    return int(read_json_object(workdir / POINTER_FILE, ValueError, "no sharded checkpoint").get("step", -1))
