"""Each activation's defining property, and the loss terms it owns."""

import pytest
import torch

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.models.activations import JumpReLU, activation_names, squared_error


def _activation(name: str, d_sae: int = 64, k: int = 5):
    cfg = DictionaryConfig(d_in=8, d_out=8, d_sae=d_sae, activation=name, k=k, jumprelu_init_threshold=0.3)
    return cfg.activation_class.from_config(cfg)


@pytest.mark.parametrize("name", activation_names())
@pytest.mark.parametrize("training", [True, False])
def test_output_is_zero_or_preactivation(name: str, training: bool) -> None:
    act = _activation(name)
    act.train()
    torch.manual_seed(0)
    act(torch.randn(32, 64))  # sets the BatchTopK threshold so eval uses it
    act.train(training)
    pre = torch.randn(32, 64)
    codes = act(pre)
    assert codes.shape == pre.shape
    assert torch.all((codes == 0) | (codes == pre)), "σ(z)_i must be 0 or z_i"
    assert (codes != 0).any()


def test_topk_keeps_exactly_k_per_sample() -> None:
    act = _activation("topk", k=7)
    pre = torch.randn(50, 64) + 10.0  # all positive: ReLU removes nothing
    codes = act(pre)
    assert torch.equal((codes != 0).sum(dim=-1), torch.full((50,), 7))
    kept_min = torch.where(codes != 0, pre, torch.inf).min(dim=-1).values
    dropped_max = torch.where(codes == 0, pre, -torch.inf).max(dim=-1).values
    assert torch.all(kept_min >= dropped_max)


def test_batchtopk_keeps_k_times_batch_per_batch() -> None:
    act = _activation("batchtopk", k=3)
    act.train()
    pre = torch.randn(40, 64) + 10.0
    pre[0] += 5.0  # one sample gets many more latents than k
    codes = act(pre)
    per_sample = (codes != 0).sum(dim=-1)
    assert int(per_sample.sum()) == 3 * 40
    assert per_sample[0] > 3 and per_sample.min() < 3


def test_batchtopk_eval_uses_the_running_threshold_per_sample() -> None:
    act = _activation("batchtopk", k=3)
    act.train()
    torch.manual_seed(1)
    for _ in range(20):
        act(torch.randn(64, 64))
    assert act.threshold > 0
    act.eval()
    pre = torch.randn(16, 64)
    together = act(pre)
    alone = torch.cat([act(pre[i : i + 1]) for i in range(16)])
    assert torch.equal(together, alone), "inference codes must not depend on the rest of the batch"
    assert torch.equal(together, pre * (pre > act.threshold))


def test_jumprelu_threshold_receives_gradient_from_output_and_l0() -> None:
    act = _activation("jumprelu")
    assert isinstance(act, JumpReLU)
    theta = act.threshold.detach()
    pre = theta + torch.tensor([[-0.01, 0.01, 0.5] + [-1.0] * 61])  # two latents within the bandwidth
    codes = act(pre)
    penalty = act.sparsity_penalty(pre, codes, torch.ones(64))
    (grad_l0,) = torch.autograd.grad(penalty, act.threshold, retain_graph=True)
    assert grad_l0[0] < 0 and grad_l0[1] < 0, "raising θ must lower the (smoothed) L0"
    assert torch.all(grad_l0[2:] == 0), "latents far from θ get no straight-through gradient"
    (grad_out,) = torch.autograd.grad(codes.sum(), act.threshold)
    assert grad_out[:2].abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_jumprelu_gate_matches_the_straight_through_formulas(dtype: torch.dtype) -> None:
    """Codes, per-sample L0 and both gradients of the one-node gate against Rajamanoharan et al.'s formulas
    written out: ∂/∂pre = g·H(pre − θ); ∂/∂θ = −Σ_b K·(θ·g_codes + g_L0)/ε with K = 1[|pre − θ| < ε/2]."""
    generator = torch.Generator().manual_seed(0)
    act = JumpReLU(40, init_threshold=0.2, bandwidth=0.1).double()
    with torch.no_grad():
        act.threshold.uniform_(0.0, 0.4, generator=generator)
    pre = (torch.randn(64, 40, generator=generator, dtype=torch.float64) * 0.3).to(dtype).requires_grad_()
    grad_codes = torch.randn(64, 40, generator=generator, dtype=torch.float64).to(dtype)
    grad_l0 = torch.randn(64, generator=generator, dtype=torch.float64)
    codes, l0 = act.gate(pre)
    torch.autograd.backward([codes, l0], [grad_codes, grad_l0])

    theta, z = act.threshold.detach(), pre.detach().double()
    gate = (z > theta).double()
    kernel = ((z - theta).abs() < act.bandwidth / 2).double()
    assert torch.equal(codes.detach().double(), (z * gate).to(dtype).double())
    assert torch.equal(l0.detach(), gate.sum(dim=-1))
    assert pre.grad is not None and act.threshold.grad is not None
    assert torch.equal(pre.grad.double(), (grad_codes.double() * gate).to(dtype).double())
    expected = -(kernel * (theta * grad_codes.double() + grad_l0[:, None])).sum(dim=0) / act.bandwidth
    assert kernel.sum() > 20, "the check needs entries inside the window"
    torch.testing.assert_close(act.threshold.grad, expected, rtol=1e-12, atol=1e-12)
    assert act.sparsity_penalty(pre, codes, torch.ones(40)).item() == pytest.approx(gate.sum(dim=-1).mean().item())


def test_jumprelu_threshold_moves_additively_under_adam() -> None:
    """θ is the trained parameter: Adam moves it by ≈ lr per step even from a small θ⁰ (through log θ it would
    move by ≈ lr·θ⁰, a hundred times less here)."""
    act = JumpReLU(4, init_threshold=0.01, bandwidth=0.05)
    optimizer = torch.optim.Adam(act.parameters(), lr=1e-3)
    pre = torch.full((8, 4), 0.02)  # inside the bandwidth: the L0 penalty pushes θ up
    for _ in range(10):
        optimizer.zero_grad()
        act.sparsity_penalty(pre, act(pre), torch.ones(4)).backward()
        optimizer.step()
    assert torch.allclose(act.threshold.detach(), torch.full((4,), 0.02), atol=1e-4)


def test_jumprelu_threshold_is_projected_onto_non_negative_values() -> None:
    act = JumpReLU(3, init_threshold=0.1, bandwidth=0.05)
    with torch.no_grad():
        act.threshold.copy_(torch.tensor([-0.2, 0.0, 0.3]))
    pre = torch.tensor([[-0.1, 0.05, 0.2]])
    act.eval()
    assert torch.equal(act(pre), torch.tensor([[0.0, 0.05, 0.0]])), "eval gates on max(θ, 0)"
    assert torch.equal(act.inference_threshold(), torch.tensor([0.0, 0.0, 0.3]))
    act.train()
    act(pre)
    assert torch.equal(act.threshold.detach(), torch.tensor([0.0, 0.0, 0.3])), "a training pass projects θ"


def test_jumprelu_loads_a_legacy_log_threshold() -> None:
    act = JumpReLU(3, init_threshold=0.1, bandwidth=0.05)
    act.load_state_dict({"log_threshold": torch.tensor([0.5, 1.0, 2.0]).log()})
    assert torch.allclose(act.threshold.detach(), torch.tensor([0.5, 1.0, 2.0]))


def test_relu_penalty_is_weighted_by_decoder_norms() -> None:
    act = _activation("relu")
    codes = torch.relu(torch.randn(10, 64))
    norms = torch.ones(64)
    base = act.sparsity_penalty(codes, codes, norms)
    norms[0] = 3.0
    expected = base + 2.0 * codes[:, 0].mean()
    assert torch.allclose(act.sparsity_penalty(codes, codes, norms), expected)


def test_topk_family_has_no_sparsity_penalty() -> None:
    for name in activation_names(uses_k=True):
        codes = torch.zeros(2, 64)
        assert _activation(name).sparsity_penalty(codes, codes, torch.ones(64)) is None


def test_matryoshka_loss_sums_nested_prefix_reconstructions() -> None:
    cfg = DictionaryConfig(
        d_in=6, d_out=6, d_sae=16, activation="matryoshka", k=3, matryoshka_prefixes=(0.25, 0.5, 1.0)
    )
    model = SparseDictionary(cfg, torch.Generator().manual_seed(0))
    x = torch.randn(9, 6)
    out = model.loss(x, x)
    by_hand = sum(squared_error(x, out.dense_codes()[:, :m] @ model.W_dec[:m] + model.b_dec) for m in (4, 8, 16))
    assert torch.allclose(out.reconstruction, by_hand)
    assert cfg.matryoshka_prefix_sizes == [4, 8, 16]


def test_squared_error_matches_the_composed_ops_in_value_and_gradient() -> None:
    gen = torch.Generator().manual_seed(0)
    x_out = torch.randn(7, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    x_hat = torch.randn(7, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(squared_error, (x_out, x_hat))
    composed = (x_out - x_hat).pow(2).sum(dim=-1).mean()
    assert torch.allclose(squared_error(x_out, x_hat), composed, rtol=1e-12)
    three_d = torch.randn(2, 3, 4, dtype=torch.float64, generator=gen)  # averaged over every leading position
    assert torch.allclose(squared_error(three_d, torch.zeros_like(three_d)), three_d.pow(2).sum(-1).mean())
    x_bf16 = torch.randn(4, 3, generator=gen).bfloat16().requires_grad_()
    loss = squared_error(torch.randn(4, 3, generator=gen), x_bf16)  # mixed dtypes: each gradient in its input's
    loss.backward()
    assert loss.dtype == torch.float32 and x_bf16.grad is not None and x_bf16.grad.dtype == torch.bfloat16
