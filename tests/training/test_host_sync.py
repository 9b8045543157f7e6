"""The training loop reads nothing back from the device between log steps.

On CUDA every read of a device tensor by the host (``.item()``, ``float(t)``, ``bool(t)``, ``.tolist()``, a
data-dependent shape such as ``nonzero`` or boolean indexing) stalls the GPU until the queued kernels finish. Here
every such call made while the trainer runs is recorded through a ``TorchFunctionMode`` and attributed to the step
whose batch was last drawn; only the steps after which the trainer logs may read.
"""

import traceback
from dataclasses import dataclass

import pytest
import torch
from torch.overrides import TorchFunctionMode

from devices import DEVICES
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer, auxk_loss

READS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "cpu", "numpy", "nonzero"}
"""Tensor calls that copy device data to the host (boolean-mask indexing reaches ``nonzero``)."""
HOST_SIDE = ("torch/optim/",)
"""Adam's step counter is a CPU tensor whenever ``capturable`` is off, on CUDA too: reading it is not a sync."""


@dataclass(frozen=True)
class Read:
    step: int
    call: str
    where: str  # the innermost dictlab function that made the call


class RecordReads(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.step = -1
        self.reads: list[Read] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        name = getattr(func, "__name__", "")
        if name in READS:
            stack = traceback.extract_stack()[:-1]
            if not any(any(part in f.filename for part in HOST_SIDE) for f in stack):
                ours = [f.name for f in stack if "/dictlab/" in f.filename.replace("\\", "/")]
                self.reads.append(Read(self.step, name, ours[-1] if ours else "?"))
        return func(*args, **(kwargs or {}))


class _Announced(ShuffledBatches):
    """Batches that tell the recorder which step is running."""

    def __init__(self, data: torch.Tensor, recorder: RecordReads) -> None:
        super().__init__(data, 64, 3)
        self.recorder = recorder

    def batch(self, step: int) -> torch.Tensor:
        self.recorder.step = step
        return super().batch(step)


D, D_SAE, LOG_EVERY, STEPS = 12, 48, 4, 12
CASES = {
    "relu": (dict(activation="relu"), dict(sparsity_coefficient=0.05)),
    "jumprelu": (dict(activation="jumprelu"), dict(sparsity_coefficient=0.01, target_l0=3.0)),
    "topk": (dict(activation="topk", k=3), {}),
    "topk-auxk": (dict(activation="topk", k=3), dict(aux_coefficient=1 / 32, dead_window_samples=64)),
    "batchtopk": (dict(activation="batchtopk", k=3), {}),
    "matryoshka": (dict(activation="matryoshka", k=3, matryoshka_prefixes=(0.25, 1.0)), {}),
}
KNOWN = {"batchtopk": {"_top_above_sampled_threshold"}, "matryoshka": {"_top_above_sampled_threshold"}}
"""Reads still made every step: BatchTopK's exact selection learns how many entries reached its sampled threshold
(the size of one ``nonzero``)."""
KNOWN_ON_CPU = {"topk-auxk": {"auxk_loss"}}
"""Reads made on the CPU only, where a read costs nothing: AuxK's dead count (its fixed-width form, used on CUDA and
tested read-free below, costs up to 2× a TopK step here when few latents are dead)."""


def _reads(case: str, device: str) -> tuple[list[Read], Trainer]:
    model_args, recipe_args = CASES[case]
    cfg = DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, **model_args)
    recipe = RecipeConfig(**{"lr": 3e-3, "dead_window_samples": 128, **recipe_args})
    member = Member(case, SparseDictionary(cfg, torch.Generator().manual_seed(0)), recipe)
    data = torch.randn(512, D, generator=torch.Generator().manual_seed(1)).relu()
    recorder = RecordReads()
    config = TrainConfig(batch_size=64, steps=STEPS, checkpoint_every=0, log_every=LOG_EVERY, progress=False)
    trainer = Trainer([member], _Announced(data, recorder), config, device=device)
    with recorder:
        trainer.fit()
    return recorder.reads, trainer


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", list(CASES))
def test_no_host_reads_between_log_steps(case: str, device: str) -> None:
    reads, trainer = _reads(case, device)
    if trainer.states[0].member.recipe.aux_coefficient > 0:  # latents silent for a step are dead
        assert trainer.states[0].last["auxk"] > 0, "AuxK must have dead latents to use"
    logging = {s for s in range(STEPS) if (s + 1) % LOG_EVERY == 0}  # the trainer logs after these steps
    between = {r.where for r in reads if r.step not in logging}
    expected = KNOWN.get(case, set()) | (KNOWN_ON_CPU.get(case, set()) if device == "cpu" else set())
    assert between == expected, [r for r in reads if r.step not in logging][:5]
    assert any(r.step in logging for r in reads)  # the recorder sees the reads the log steps do make


@pytest.mark.parametrize("n_dead", [0, 5])
def test_fixed_width_auxk_reads_nothing(n_dead: int) -> None:
    model = SparseDictionary(DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="topk", k=3))
    x = torch.randn(64, D, generator=torch.Generator().manual_seed(1))
    out = model.loss(x, x)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[:n_dead] = True
    recorder = RecordReads()
    with recorder:
        auxk_loss(model, x, out.pre, x - out.x_hat, dead, 8, fixed_width=True).backward()
    assert recorder.reads == []
    with recorder:
        auxk_loss(model, x, out.pre, x - out.x_hat, dead, 8)
    assert {r.where for r in recorder.reads} == {"auxk_loss"}  # the recorder sees the CPU form's read
