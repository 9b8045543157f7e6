"""Training cases run in spawned gloo process groups by the data-parallel tests (importable by the children).

Every case builds the same float64 data and dictionaries from fixed seeds on every rank, trains a few Adam steps
with :class:`~dictlab.training.Trainer`, and rank 0 saves the final parameters and the last global terms.
"""

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Anchors, Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer

D, D_SAE, BATCH, STEPS = 12, 128, 64, 12


def _data(width: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(D_SAE, width, generator=g, dtype=torch.float64)
    codes = torch.rand(1024, D_SAE, generator=g, dtype=torch.float64) * (torch.rand(1024, D_SAE, generator=g) < 0.1)
    return codes @ basis + 0.01 * torch.randn(1024, width, generator=g, dtype=torch.float64)


def _member(case: str) -> tuple[Member, int]:
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
    model = SparseDictionary(cfg, torch.Generator().manual_seed(1)).double()
    anchors = None
    if "anchors" in options:
        g = torch.Generator().manual_seed(2)
        unit = lambda n, d: torch.nn.functional.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)  # noqa: E731
        anchors = Anchors(unit(3, d_in), unit(3, d_out), torch.arange(3))
        recipe["anchor_coefficient"] = 0.1
    member = Member(case, model, RecipeConfig(**recipe), anchors=anchors, **({"view": view} if view else {}))
    return member, width


def run_case(case: str) -> dict[str, Any]:
    member, width = _member(case)
    config = TrainConfig(batch_size=BATCH, steps=STEPS, checkpoint_every=0, log_every=STEPS, progress=False, seed=3)
    trainer = Trainer([member], ShuffledBatches(_data(width), BATCH, 3), config)
    summary = trainer.fit()[0]
    state = {k: v.detach().clone() for k, v in member.model.state_dict().items()}
    return {"state": state, "last": summary.last, "resampled": summary.resampled}


def worker(rank: int, world: int, init_file: str, cases: list[str], out: str, control: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        if control == "no-gradient-sum":
            from dictlab.training import trainer

            trainer.sum_gradients_ = lambda parameters: None  # type: ignore[assignment]
        elif control == "per-rank-batchtopk":
            from dictlab.models.activations import topk

            topk.global_batch_top_indices = lambda pre, k: topk.batch_top_indices(pre, k * pre.shape[0])
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
