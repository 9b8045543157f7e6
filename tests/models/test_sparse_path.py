"""The sparse training path of the TopK family agrees with the dense reference path."""

import dataclasses

import pytest
import torch

from devices import DEVICES
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.models.activations import activation_names, batch_top_indices
from dictlab.models.activations.topk import _top_above_sampled_threshold
from dictlab.models.sparse_latents import (
    ActiveLatents,
    gather_pre_activations,
    sparse_decode,
    sparse_decode_prefixes,
)
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer
from dictlab.training.dead_latents import auxk_loss
from dictlab.training.precision import forward_autocast

D, D_SAE, K = 12, 96, 4


def _model(activation: str, d_out: int = D, **cfg: object) -> SparseDictionary:
    config = DictionaryConfig(d_in=D, d_out=d_out, d_sae=D_SAE, activation=activation, k=K, **cfg)  # type: ignore[arg-type]
    model = SparseDictionary(config, torch.Generator().manual_seed(1)).double()
    with torch.no_grad():  # nonzero biases so every gradient term is exercised
        model.b_enc.normal_(0, 0.1, generator=torch.Generator().manual_seed(2))
        model.b_dec.normal_(0, 0.3, generator=torch.Generator().manual_seed(3))
    return model


def _grads(
    model: SparseDictionary, x: torch.Tensor, sparse: bool, y: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    out = model.loss(x, x if y is None else y, sparse=sparse)
    out.reconstruction.backward()
    return out.reconstruction.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("activation", activation_names(has_sparse_path=True))
@pytest.mark.parametrize("centre_input", [True, False])
def test_sparse_and_dense_paths_give_the_same_loss_and_gradients(activation: str, centre_input: bool) -> None:
    x = torch.randn(40, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = _model(activation, apply_b_dec_to_input=centre_input)
    dense_loss, dense = _grads(model, x, sparse=False)
    sparse_loss, sparse = _grads(model, x, sparse=True)
    torch.testing.assert_close(sparse_loss, dense_loss)
    for name in dense:
        torch.testing.assert_close(sparse[name], dense[name], msg=f"gradient of {name}")
    assert set(dense) == {"W_enc", "b_enc", "W_dec", "b_dec"}
    out = model.loss(x, x, sparse=True)
    reference = model.loss(x, x, sparse=False)
    torch.testing.assert_close(out.dense_codes(), reference.codes)
    assert torch.equal(out.fired(), reference.fired()) and out.mean_l0() == reference.mean_l0()


def test_transcoder_paths_agree() -> None:
    """d_out ≠ d_in and no input centring, as the bench's transcoder."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(40, D, generator=g, dtype=torch.float64), torch.randn(40, 7, generator=g, dtype=torch.float64)
    model = _model("topk", d_out=7, kind="transcoder", apply_b_dec_to_input=False)
    dense_loss, dense = _grads(model, x, sparse=False, y=y)
    sparse_loss, sparse = _grads(model, x, sparse=True, y=y)
    torch.testing.assert_close(sparse_loss, dense_loss)
    for name in dense:
        torch.testing.assert_close(sparse[name], dense[name], msg=f"gradient of {name}")


def test_sparse_path_matches_in_eval_mode_with_a_learned_threshold() -> None:
    x = torch.randn(40, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = _model("batchtopk")
    model.loss(x, x, sparse=True)  # one training-mode pass sets the threshold
    assert model.activation.threshold > 0
    model.eval()
    torch.testing.assert_close(model.loss(x, x, sparse=True).x_hat, model(x))


def test_gather_and_decode_pass_gradcheck() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 5, dtype=torch.float64, generator=g, requires_grad=True)
    W_enc = torch.randn(5, 9, dtype=torch.float64, generator=g, requires_grad=True)
    b_enc = torch.randn(9, dtype=torch.float64, generator=g, requires_grad=True)
    W_dec = torch.randn(9, 5, dtype=torch.float64, generator=g, requires_grad=True)
    with torch.no_grad():
        pre = x @ W_enc + b_enc
    active = ActiveLatents.from_flat(pre, batch_top_indices(pre, 14))

    def composed(x: torch.Tensor, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor) -> torch.Tensor:
        fresh = dataclasses.replace(active, pre=(x @ W_enc + b_enc).detach()[active.rows, active.cols])
        return sparse_decode(fresh, gather_pre_activations(x, W_enc, b_enc, fresh), W_dec, n_latents=7)

    assert torch.autograd.gradcheck(composed, (x, W_enc, b_enc, W_dec))


@pytest.mark.parametrize("sizes", [[3, 5, 9], [2, 6]])  # the second leaves latents 6–8 out of every prefix
def test_prefix_decode_equals_one_decode_per_prefix(sizes: list[int]) -> None:
    g = torch.Generator().manual_seed(5)
    pre = torch.randn(7, 9, dtype=torch.float64, generator=g)
    active = ActiveLatents.from_flat(pre, batch_top_indices(pre, 20))  # uneven entries per sample, one may hold none
    values = active.pre.relu().requires_grad_()
    W_dec = torch.randn(9, 4, dtype=torch.float64, generator=g, requires_grad=True)
    b_dec = torch.randn(4, dtype=torch.float64, generator=g)
    together = sparse_decode_prefixes(active, values, W_dec, sizes, b_dec)
    one_by_one = [sparse_decode(active, values, W_dec, b_dec, n_latents=m) for m in sizes]
    for got, expected in zip(together, one_by_one, strict=True):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda v, w: tuple(sparse_decode_prefixes(active, v, w, sizes)), (values, W_dec))


@pytest.mark.parametrize("misleading_sample", [False, True])
def test_batch_top_indices_is_exact_from_the_sampled_threshold_and_without_it(misleading_sample: bool) -> None:
    """512 × 1024 entries: sampled every 5th entry. Misleading: the sampled entries are the batch's largest, so
    the sampled threshold lets fewer than ``total`` through and the per-row candidates must answer."""
    g = torch.Generator().manual_seed(6)
    pre = torch.randn(512, 1024, generator=g) + torch.randn(1024, generator=g)
    if misleading_sample:
        pre.view(-1)[::5] += 10.0
    total = 8 * 512
    sampled = _top_above_sampled_threshold(pre.reshape(-1), total, 1024)
    assert (sampled is None) == misleading_sample
    expected = pre.reshape(-1).topk(total).indices.sort().values
    assert torch.equal(batch_top_indices(pre, total).sort().values, expected)


def test_batch_top_indices_is_exact_even_when_one_row_holds_most_entries() -> None:
    g = torch.Generator().manual_seed(5)
    pre = torch.randn(32, 200, generator=g)
    pre[7] += 10.0  # row 7 holds the 150 largest entries: the candidate set must grow
    for total in (1, 64, 150, 400):
        expected = pre.reshape(-1).topk(total).indices.sort().values
        assert torch.equal(batch_top_indices(pre, total).sort().values, expected)


def test_auxk_is_the_same_on_either_path() -> None:
    x = torch.randn(40, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    model = _model("topk")
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[::3] = True
    grads = []
    for sparse in (False, True):
        model.zero_grad()
        out = model.loss(x, x, sparse=sparse)
        auxk_loss(model, x, out.pre, x - out.x_hat, dead, 5).backward()
        grads.append(model.W_enc.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
    assert grads[0][:, ~dead].abs().max() == 0 and grads[0][:, dead].abs().max() > 0


def test_training_on_either_path_follows_the_same_trajectory() -> None:
    rows = torch.randn(512, D, generator=torch.Generator().manual_seed(0))
    trained = []
    for path in ("dense", "sparse"):
        cfg = DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="batchtopk", k=K)
        member = Member(path, SparseDictionary(cfg, torch.Generator().manual_seed(1)), RecipeConfig(path=path))
        config = TrainConfig(batch_size=64, steps=30, progress=False, checkpoint_every=0)
        Trainer([member], ShuffledBatches(rows, 64, 0), config).fit()
        trained.append(member.model)
    torch.testing.assert_close(trained[0].W_dec, trained[1].W_dec, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(trained[0].W_enc, trained[1].W_enc, atol=1e-4, rtol=1e-4)


def test_auto_path_and_bad_requests() -> None:
    wide = SparseDictionary(DictionaryConfig(d_in=8, d_out=8, d_sae=256, activation="topk", k=8))
    narrow = SparseDictionary(DictionaryConfig(d_in=8, d_out=8, d_sae=32, activation="topk", k=8))
    relu = SparseDictionary(DictionaryConfig(d_in=8, d_out=8, d_sae=256, activation="relu"))
    assert wide.prefers_sparse_path() and not narrow.prefers_sparse_path() and not relu.prefers_sparse_path()
    x = torch.randn(4, 8)
    assert wide.loss(x, x).active is not None and narrow.loss(x, x).codes is not None
    with pytest.raises(ValueError, match="TopK-family"):
        relu.loss(x, x, sparse=True)
    with pytest.raises(ValueError, match="path='sparse'"):
        member = Member("m", relu, RecipeConfig(path="sparse", sparsity_coefficient=1.0))
        Trainer([member], ShuffledBatches(torch.randn(16, 8), 4, 0), TrainConfig(batch_size=4, steps=1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", activation_names(has_sparse_path=True))
def test_paths_agree_in_float32_on_every_available_device(activation: str, device: str) -> None:
    x = torch.randn(256, D, generator=torch.Generator().manual_seed(0)).to(device)
    model = _model(activation).float().to(device)
    dense_loss, dense = _grads(model, x, sparse=False)
    sparse_loss, sparse = _grads(model, x, sparse=True)
    torch.testing.assert_close(sparse_loss, dense_loss, rtol=1e-5, atol=1e-5)
    for name in dense:
        torch.testing.assert_close(sparse[name], dense[name], rtol=1e-4, atol=1e-5, msg=f"gradient of {name}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("activation", activation_names(has_sparse_path=True))
def test_paths_agree_under_bf16_autocast(activation: str, device: str) -> None:
    """Both paths under the trainer's bf16 autocast: the same loss and gradients to bf16's precision (measured on
    CPU: loss within 0.05 %, gradients within 1 % in norm)."""
    x = torch.randn(256, D, generator=torch.Generator().manual_seed(0)).to(device)
    model = _model(activation).float().to(device)
    results = {}
    for sparse in (False, True):
        model.zero_grad()
        with forward_autocast("bf16", torch.device(device)):
            out = model.loss(x, x, sparse=sparse)
        out.reconstruction.backward()
        results[sparse] = out.reconstruction.detach().float(), {n: p.grad.clone() for n, p in model.named_parameters()}
    (dense_loss, dense), (sparse_loss, sparse_grads) = results[False], results[True]
    torch.testing.assert_close(sparse_loss, dense_loss, rtol=5e-3, atol=0.0)
    for name, reference in dense.items():
        error = (sparse_grads[name] - reference).norm() / reference.norm()
        assert error < 0.03, f"gradient of {name}: relative error {error:.3g}"


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_training_tracks_fp32(device: str) -> None:
    rows = torch.randn(2048, D, generator=torch.Generator().manual_seed(0))
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = DictionaryConfig(d_in=D, d_out=D, d_sae=D_SAE, activation="topk", k=K)
        model = SparseDictionary(cfg, torch.Generator().manual_seed(1))
        member = Member(precision, model, RecipeConfig(path="sparse", lr=3e-3))
        config = TrainConfig(batch_size=256, steps=60, progress=False, checkpoint_every=0, precision=precision)
        (summary,) = Trainer([member], ShuffledBatches(rows, 256, 0), config, device=device).fit()
        assert model.W_enc.dtype == torch.float32  # parameters stay fp32
        losses[precision] = summary.last["reconstruction"]
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)
