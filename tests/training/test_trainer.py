"""Trainer: anchoring, resampling, AuxK, schedules, determinism, checkpoint/resume and bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training import (
    Anchors,
    FiringTracker,
    Member,
    RecipeConfig,
    ShuffledBatches,
    TrainConfig,
    Trainer,
    anchor_loss,
    auxk_loss,
    resample_dead_latents,
)
from dictlab.training.schedules import lr_multiplier, warmup_multiplier
from dictlab.training.trainer import TrainingDiverged

D, D_SAE = 12, 48


def _data(n: int = 512, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    features = torch.nn.functional.normalize(torch.randn(20, D, generator=g), dim=-1)
    codes = torch.rand(n, 20, generator=g) * (torch.rand(n, 20, generator=g) < 0.15)
    return codes @ features


def _members(recipe_overrides: dict | None = None) -> list[Member]:
    recipe = RecipeConfig(**{"lr": 3e-3, "dead_window_samples": 256, **(recipe_overrides or {})})
    specs = {
        "topk": (DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="topk", k=3), recipe),
        "batchtopk": (DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="batchtopk", k=3), recipe),
        "relu": (
            DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="relu"),
            recipe.model_copy(update={"sparsity_coefficient": 0.05}),
        ),
        "jumprelu": (
            DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="jumprelu"),
            recipe.model_copy(update={"sparsity_coefficient": 0.01}),
        ),
    }
    return [
        Member(name, SparseDictionary(cfg, torch.Generator().manual_seed(1)), rec) for name, (cfg, rec) in specs.items()
    ]


def _train(workdir: Path | None, steps: int, until: int | None = None, **recipe) -> Trainer:
    config = TrainConfig(batch_size=64, steps=steps, checkpoint_every=5, log_every=2, progress=False, seed=7)
    trainer = Trainer(_members(recipe), ShuffledBatches(_data(), 64, 7), config, workdir=workdir)
    trainer.fit(until_step=until)
    return trainer


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {f"{s.member.name}.{k}": v for s in trainer.states for k, v in s.member.model.state_dict().items()}


RESAMPLING = {"resample_every": 4, "resample_stop_frac": 0.9, "aux_coefficient": 1 / 32, "dead_window_samples": 64}


def test_a_fit_continued_in_the_same_process_trains_as_one_fit() -> None:
    """fit() ends in eval mode; a later fit() of the same trainer trains in training mode again (BatchTopK's
    batch selection and threshold updates, JumpReLU's projection), so the two fits equal one."""
    reference = _state(_train(None, steps=12))
    trainer = _train(None, steps=12, until=5)
    assert not any(s.member.model.training for s in trainer.states)
    trainer.fit()
    state = _state(trainer)
    for key, value in reference.items():
        assert torch.equal(state[key], value), key


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    reference = _state(_train(tmp_path / "a", steps=24, **RESAMPLING))
    _train(tmp_path / "b", steps=24, until=13, **RESAMPLING)  # "killed" after step 13; last checkpoint at 10
    resumed = _train(tmp_path / "b", steps=24, **RESAMPLING)
    assert resumed.step == 24
    assert resumed.states[0].resampled > 0, "the test must exercise resampling across the resume"
    state = _state(resumed)
    assert state.keys() == reference.keys()
    for name in reference:
        assert torch.equal(reference[name], state[name]), name
    lines = [json.loads(line) for line in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in lines if r["member"] == "topk"]
    assert steps == list(range(2, 25, 2)), "the log must hold each step once after a resume"


def test_process_killed_mid_run_resumes_to_the_same_weights(tmp_path: Path) -> None:
    script = f"""
import sys, torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
torch.set_num_threads(1)
from test_trainer import _train, _state
from safetensors.torch import save_file
trainer = _train({str(tmp_path / "killed")!r}, steps=4000, **{RESAMPLING!r})
save_file(_state(trainer), sys.argv[1])
"""
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "unused.safetensors")])
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "the child never wrote a checkpoint"
    payload = torch.load(checkpoint, weights_only=True)
    assert 0 < payload["step"] < 4000
    # Resuming with a different length is refused; resume with the original length but stop shortly after.
    with pytest.raises(ValueError, match="made for 4000 steps"):
        _train(tmp_path / "killed", steps=payload["step"] + 6, **RESAMPLING)
    resumed = _train(tmp_path / "killed", steps=4000, until=payload["step"] + 6, **RESAMPLING)
    reference = _train(None, steps=4000, until=payload["step"] + 6, **RESAMPLING)
    for name, tensor in _state(reference).items():
        assert torch.equal(tensor, _state(resumed)[name]), name


def test_training_is_deterministic_under_a_seed() -> None:
    a, b = _state(_train(None, steps=12)), _state(_train(None, steps=12))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_anchoring_pulls_anchored_rows_to_the_anchors() -> None:
    g = torch.Generator().manual_seed(5)
    k = 4
    directions = torch.nn.functional.normalize(torch.randn(k, D, generator=g), dim=-1)
    anchors = Anchors(directions, directions, torch.arange(k))

    def distance(with_anchors: bool) -> float:
        model = SparseDictionary(DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="topk", k=3))
        model.load_state_dict(SparseDictionary(model.cfg, torch.Generator().manual_seed(1)).state_dict())
        recipe = RecipeConfig(lr=1e-2, anchor_coefficient=1.0)
        member = Member("m", model, recipe, anchors=anchors if with_anchors else None)
        config = TrainConfig(batch_size=64, steps=300, progress=False, checkpoint_every=0)
        Trainer([member], ShuffledBatches(_data(), 64, 0), config).fit()
        return anchor_loss(model, anchors).item()

    start = anchor_loss(
        SparseDictionary(
            DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="topk", k=3), torch.Generator().manual_seed(1)
        ),
        anchors,
    ).item()
    anchored, free = distance(True), distance(False)
    assert anchored < 0.01 * start, (anchored, start)
    assert anchored < 0.01 * free, (anchored, free)


def test_anchor_loss_is_the_papers_squared_frobenius_penalty() -> None:
    model = SparseDictionary(DictionaryConfig(d_in=3, d_out=3, d_sae=5, activation="relu"))
    a_in, a_out = torch.eye(3)[:2], torch.eye(3)[1:]
    by_hand = ((model.W_enc.T[:2] - a_in) ** 2).sum() + ((model.W_dec[:2] - a_out) ** 2).sum()
    anchors = Anchors(a_in, a_out, torch.tensor([0, 1]))
    assert torch.allclose(anchor_loss(model, anchors), by_hand)
    encoder_only = ((model.W_enc.T[:2] - a_in) ** 2).sum()
    assert torch.allclose(anchor_loss(model, anchors, "encoder"), encoder_only)
    assert torch.allclose(anchor_loss(model, anchors, "decoder"), by_hand - encoder_only)
    anchor_loss(model, anchors, "decoder").backward()
    assert model.W_enc.grad is None and model.W_dec.grad[:2].abs().sum() > 0 and model.W_dec.grad[2:].eq(0).all()
    with pytest.raises(ValueError, match="unknown anchor terms"):
        anchor_loss(model, anchors, "both_and_more")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="anchor widths"):
        Anchors(torch.eye(4)[:2], torch.eye(4)[:2], torch.tensor([0, 1])).check_fits(model)


def test_unit_norm_decoder_is_kept() -> None:
    trainer = _train(None, steps=10)
    for state in trainer.states:
        assert torch.allclose(state.member.model.W_dec.norm(dim=-1), torch.ones(D_SAE), atol=1e-5)


def test_auxk_trains_only_dead_latents_decoder_rows() -> None:
    model = SparseDictionary(DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="topk", k=3))
    x = _data(64)
    out = model.loss(x, x)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    assert auxk_loss(model, x, out.pre, x - out.x_hat, dead, 4).item() == 0.0
    dead[:10] = True
    loss = auxk_loss(model, x, out.pre, x - out.x_hat, dead, 4)
    loss.backward()
    rows_with_grad = model.W_dec.grad.abs().sum(dim=-1) > 0
    assert rows_with_grad[:10].any() and not rows_with_grad[10:].any()


@pytest.mark.parametrize("fixed_width", [False, True])
@pytest.mark.parametrize("n_dead", [0, 3, 20, D_SAE])
def test_auxk_is_its_dense_definition_for_any_number_of_dead_latents(n_dead: int, fixed_width: bool) -> None:
    """Both forms are the top-min(k_aux, n_dead) of the dead latents; the fixed-width one takes k_aux entries per
    row with the live ones weighted 0."""
    x, k_aux = _data(64).double(), 5
    model = SparseDictionary(DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="topk", k=3)).double()
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[torch.randperm(D_SAE, generator=torch.Generator().manual_seed(2))[:n_dead]] = True
    out = model.loss(x, x)
    residual = (x - out.x_hat).detach()
    loss = auxk_loss(model, x, out.pre, residual, dead, k_aux, fixed_width=fixed_width)
    pre = model.pre_activations(x)
    dead_idx = dead.nonzero().squeeze(-1)
    values, positions = pre[:, dead_idx].topk(min(k_aux, n_dead), dim=1)
    codes = torch.zeros_like(pre).scatter(1, dead_idx[positions], values.relu())
    expected = (residual - codes @ model.W_dec).pow(2).sum() / residual.pow(2).sum() if n_dead else pre.new_zeros(())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-12, abs=0)
    params = list(model.parameters())
    none = [None] * len(params)  # a constant loss: no gradient
    got = torch.autograd.grad(loss, params, allow_unused=True) if loss.requires_grad else none
    want = torch.autograd.grad(expected, params, allow_unused=True) if n_dead else none
    for param, a, b in zip(params, got, want, strict=True):
        zero = torch.zeros_like(param)
        torch.testing.assert_close(zero if a is None else a, zero if b is None else b, rtol=1e-12, atol=1e-15)


def test_resampling_reinitialises_dead_latents_and_their_adam_state() -> None:
    model = SparseDictionary(DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="relu"))
    optimizer = torch.optim.Adam(model.parameters())
    x = _data(256)
    out = model.loss(x, x)
    (out.reconstruction + out.sparsity).backward()
    optimizer.step()
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[[3, 7]] = True
    before = model.W_dec.detach().clone()
    count = resample_dead_latents(model, optimizer, dead, x, x, 0.2, torch.Generator().manual_seed(0))
    assert count == 2
    assert not torch.equal(model.W_dec[3], before[3]) and torch.equal(model.W_dec[0], before[0])
    assert torch.allclose(model.W_dec[[3, 7]].norm(dim=-1), torch.ones(2))
    assert torch.all(optimizer.state[model.W_dec]["exp_avg"][[3, 7]] == 0)
    second = optimizer.state[model.W_enc]["exp_avg_sq"]
    others = [i for i in range(D_SAE) if i not in (3, 7)]
    assert torch.allclose(second[:, [3, 7]], second[:, others].mean().expand(D, 2))


def test_resampled_latents_take_ordinary_adam_steps() -> None:
    """Adam keeps one step count per tensor: zeroing a slice's second moment would make its next steps ≈ 3 × lr."""
    torch.manual_seed(0)
    model = SparseDictionary(DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="relu"))
    lr = 1e-3
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    x = _data(256)

    def step() -> None:
        optimizer.zero_grad()
        out = model.loss(x, x)
        (out.reconstruction + out.sparsity).backward()
        optimizer.step()

    for _ in range(1000):  # long enough that Adam's bias correction has faded (zeroed moments: steps ≈ 2.5 × lr)
        step()
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[:4] = True
    resample_dead_latents(model, optimizer, dead, x, x, 0.2, torch.Generator().manual_seed(0))
    before = model.W_enc.detach().clone()
    step()
    moved = (model.W_enc.detach() - before)[:, :4].abs()
    assert moved.max() > 0
    assert moved.max() < 1.5 * lr


def test_firing_tracker_counts_samples_since_last_fire() -> None:
    tracker = FiringTracker(3, window=10)
    tracker.update(torch.tensor([True, False, False]), 6)
    tracker.update(torch.tensor([False, True, False]), 6)
    assert tracker.samples_since_fired.tolist() == [6, 0, 12]
    assert tracker.dead_mask().tolist() == [False, False, True]


def test_schedules() -> None:
    assert [lr_multiplier(s, 10, 0.2, 0.3) for s in range(10)] == [0.5, 1, 1, 1, 1, 1, 1, 1, 2 / 3, 1 / 3]
    assert [warmup_multiplier(s, 10, 0.4) for s in (0, 3, 9)] == [0.25, 1.0, 1.0]


def test_bad_input_is_refused(tmp_path: Path) -> None:
    data = _data()
    data[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        ShuffledBatches(data, 64, 0)
    with pytest.raises(ValueError, match="exceeds the 512 training rows"):
        ShuffledBatches(_data(), 1000, 0)
    relu = SparseDictionary(DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="relu"))
    with pytest.raises(ValueError, match="needs sparsity_coefficient > 0"):
        Trainer([Member("r", relu)], ShuffledBatches(_data(), 64, 0), TrainConfig(batch_size=64, steps=2))
    wrong = SparseDictionary(DictionaryConfig(d_in=D + 1, d_out=D + 1, d_sae=8, activation="topk", k=2))
    with pytest.raises(ValueError, match=r"inputs of width 12 .* expects d_in=13"):
        Trainer([Member("w", wrong)], ShuffledBatches(_data(), 64, 0), TrainConfig(batch_size=64, steps=2))
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt or unreadable"):
        _train(tmp_path, steps=4)


def test_cpu_training_keeps_freed_memory_for_reuse() -> None:
    """After retain_freed_memory a freed 128 MiB tensor stays in the process (glibc would munmap it otherwise)."""
    from dictlab.training.cpu_memory import retain_freed_memory

    def rss_mib() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    assert retain_freed_memory() and retain_freed_memory()  # idempotent
    block = torch.ones(32 * 2**20)  # 128 MiB, touched
    held = rss_mib()
    del block
    assert rss_mib() > held - 16


class _PoisonedAfter(ShuffledBatches):
    """Batches that turn NaN from step ``poison`` on (a data fault mid-run)."""

    def __init__(self, data: torch.Tensor, poison: int) -> None:
        super().__init__(data, 64, 7)
        self.poison = poison

    def batch(self, step: int) -> torch.Tensor:
        rows = super().batch(step)
        return rows * float("nan") if step >= self.poison else rows


def test_divergence_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path) -> None:
    config = TrainConfig(batch_size=64, steps=40, checkpoint_every=5, log_every=2, progress=False, seed=7)
    trainer = Trainer(_members({}), _PoisonedAfter(_data(), 13), config, workdir=tmp_path)
    with pytest.raises(TrainingDiverged, match=r"loss became nan at step 13.*the last checkpoint is kept"):
        trainer.fit()
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 10  # the checkpoint before the fault, never overwritten with NaN weights
    for state in checkpoint["members"].values():
        assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_a_reconstruction_error_that_explodes_is_divergence(tmp_path: Path) -> None:
    with pytest.raises(TrainingDiverged, match="exceeds 100× its first step's"):
        _train(tmp_path, steps=30, lr=1e4)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path: Path) -> None:
    _train(tmp_path, steps=10, until=5)
    with pytest.raises(ValueError, match="made with other dictionaries, recipes or training settings"):
        _train(tmp_path, steps=10, lr=0.5)
