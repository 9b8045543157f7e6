"""Training cases run in spawned gloo process groups by the data-parallel tests (importable by the children).

Every case builds the same float64 data and dictionaries from fixed seeds on every rank, trains a few Adam steps
with :class:`~dictlab.training.Trainer`, and rank 0 saves the final parameters and the last global terms.
"""

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from dictlab.distributed import sum_gradients_
from dictlab.distributed.mesh import Group, Mesh
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Anchors, Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer

D, D_SAE, BATCH, STEPS = 12, 128, 64, 12

CASES = [  # activation-kind[-path][-auxk|-resample|-anchors], see _member
    "topk-sae-dense",
    "topk-sae-sparse-auxk",
    "topk-transcoder-sparse",
    "topk-crosscoder-dense",
    "relu-sae",
    "topk-sae-sparse-resample",
    "relu-sae-anchors",
    "jumprelu-sae",
    "jumprelu-transcoder",
    "batchtopk-sae-dense",
    "batchtopk-sae-sparse-auxk",
    "matryoshka-sae-sparse",
    "matryoshka-crosscoder-dense",
]


def _data(width: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(D_SAE, width, generator=g, dtype=torch.float64)
    codes = torch.rand(1024, D_SAE, generator=g, dtype=torch.float64) * (torch.rand(1024, D_SAE, generator=g) < 0.1)
    return codes @ basis + 0.01 * torch.randn(1024, width, generator=g, dtype=torch.float64)


def _member(case: str, mesh: Mesh | None = None) -> tuple[Member, int]:
    activation, kind, *options = case.split("-")
    recipe: dict[str, Any] = {"lr": 3e-3, "warmup_frac": 0.0}
    d_in = d_out = D
    width = D
    view = None
    extra: dict[str, Any] = {}
    if activation in ("relu", "jumprelu"):
        recipe["sparsity_coefficient"] = 0.05 if activation == "relu" else 0.5
    else:
        extra["k"] = 4
        recipe["path"] = "sparse" if "sparse" in options else "dense"
        recipe["aux_coefficient"] = 1 / 32 if "auxk" in options else 0.0
    if "auxk" in options or "resample" in options:
        recipe["dead_window_samples"] = BATCH
    if "resample" in options:
        recipe.update(resample_every=5, resample_pool=256)
    if kind == "transcoder":
        d_out, width = D // 2, D + D // 2
        extra["apply_b_dec_to_input"] = False

        def view(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return rows[:, :D], rows[:, D:]

    elif kind == "crosscoder":
        d_in = d_out = width = 2 * D
        extra["n_sources"] = 2
    cfg = DictionaryConfig(kind=kind, d_in=d_in, d_out=d_out, d_sae=D_SAE, activation=activation, **extra)  # type: ignore[arg-type]
    model = SparseDictionary(cfg, torch.Generator().manual_seed(1), mesh=mesh).double()
    anchors = None
    if "anchors" in options:
        g = torch.Generator().manual_seed(2)
        unit = lambda n, d: torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)  # noqa: E731
        anchors = Anchors(unit(3, d_in), unit(3, d_out), torch.arange(3))
        recipe["anchor_coefficient"] = 0.1
    member = Member(case, model, RecipeConfig(**recipe), anchors=anchors, **({"view": view} if view else {}))
    return member, width


def run_case(
    case: str, mesh: Mesh | None = None, workdir: str | None = None, until: int | None = None
) -> dict[str, Any]:
    member, width = _member(case, mesh)
    config = TrainConfig(batch_size=BATCH, steps=STEPS, checkpoint_every=4, log_every=STEPS, progress=False, seed=3)
    trainer = Trainer([member], ShuffledBatches(_data(width), BATCH, 3), config, workdir, mesh=mesh)
    summary = trainer.fit(until)[0]
    state = {k: v.detach().clone() for k, v in member.model.state_dict().items()}
    return {"state": state, "last": summary.last, "resampled": summary.resampled, "dims": member.model.latent_dims()}


DEAD_EVERY = 3
"""The one-step gradient cases mark every third latent dead, so AuxK has dead latents to use."""


def gradient_case(case: str, mesh: Mesh | None = None) -> dict[str, Any]:
    """One forward and backward pass of the trainer's loss on the first batch: global terms, this replica's x̂
    and every parameter's gradient (summed over replicas)."""
    member, width = _member(case, mesh)
    config = TrainConfig(batch_size=BATCH, steps=STEPS, checkpoint_every=0, log_every=STEPS, progress=False, seed=3)
    trainer = Trainer([member], ShuffledBatches(_data(width), BATCH, 3), config, mesh=mesh)
    trainer._initialise_biases()
    state, model = trainer.states[0], member.model
    latents = torch.arange(model.latents.start, model.latents.stop)
    state.tracker.samples_since_fired[latents % DEAD_EVERY == 0] = state.tracker.window
    rows, n_global = trainer._step_rows(0)
    x_in, x_out = trainer._views(rows)[0]
    out, total, terms = trainer._losses(state, x_in, x_out, rows.shape[0] / n_global)
    total.backward()
    sum_gradients_(model.parameters(), trainer.mesh.dp)
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
    found = trainer._global_terms(terms).read()
    return {"terms": found, "x_hat": out.x_hat.detach().clone(), "grads": grads, "dims": model.latent_dims()}


def _break(control: str) -> None:
    """Remove one piece of latent parallelism (negative controls)."""
    from dictlab.distributed import autograd, selection
    from dictlab.models import dictionary
    from dictlab.models.activations import topk

    if control == "backward-all-reduce":  # what torch.distributed.nn.functional.all_reduce does

        def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
            grad = grad.clone()
            dist.all_reduce(grad)
            return grad, None

        autograd._SumPartials.backward = staticmethod(backward)  # type: ignore[method-assign]
    elif control == "no-replicated-input":
        dictionary.replicated_input = lambda value, group: value  # type: ignore[assignment]
    elif control == "per-shard-topk":
        topk.row_top_entries = lambda values, k, group: selection.row_top_entries(values, k, Group.alone())  # type: ignore[assignment]


def latent_worker(rank: int, world: int, init_file: str, cases: list[str], out: str, tp: int, control: str) -> None:
    """Every rank saves its own results (its latent shard) to ``out.<rank>``."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        _break(control)
        mesh = Mesh.build(tp)
        results = {case: {"grad": gradient_case(case, mesh), "run": run_case(case, mesh)} for case in cases}
        torch.save(results, Path(f"{out}.{rank}"))
    finally:
        dist.destroy_process_group()


def resume_worker(
    rank: int, world: int, init_file: str, case: str, workdir: str, tp: int, until: int | None, out: str
) -> None:
    """Train ``case`` at latent-parallel ``tp`` in ``workdir`` up to step ``until`` (None: to the end)."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = run_case(case, Mesh.build(tp), workdir, until)
        torch.save(result, Path(f"{out}.{rank}"))
    finally:
        dist.destroy_process_group()


def worker(rank: int, world: int, init_file: str, cases: list[str], out: str, control: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        if control == "no-gradient-sum":
            from dictlab.training import trainer

            trainer.sum_gradients_ = lambda parameters, group=None: None  # type: ignore[assignment]
        elif control == "per-rank-batchtopk":
            from dictlab.models.activations import topk

            topk.global_batch_top_indices = lambda pre, k, mesh: topk.batch_top_indices(pre, k * pre.shape[0])
        results = {case: run_case(case) for case in cases}
        if rank == 0:
            torch.save(results, Path(out))
    finally:
        dist.destroy_process_group()


def nan_worker(rank: int, world: int, init_file: str, out: str) -> None:
    """Rows of the second half of step 5's batch (rank 1's share) turn NaN: every rank must stop at step 5."""
    from dictlab.training.trainer import TrainingDiverged

    class Poisoned(ShuffledBatches):
        def batch(self, step: int) -> torch.Tensor:
            rows = super().batch(step).clone()
            if step == 5:
                rows[BATCH // 2 :] = float("nan")
            return rows

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        member, width = _member("topk-sae-dense")
        config = TrainConfig(batch_size=BATCH, steps=STEPS, checkpoint_every=0, log_every=STEPS, progress=False, seed=3)
        try:
            Trainer([member], Poisoned(_data(width), BATCH, 3), config).fit()
            outcome = "finished"
        except TrainingDiverged as err:
            outcome = str(err)
        Path(f"{out}.{rank}").write_text(outcome)
    finally:
        dist.destroy_process_group()
