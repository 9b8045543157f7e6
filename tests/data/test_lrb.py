"""Tests of the Linear Representation Bench generator (dictlab.data)."""

import json
import math

import pytest
import torch

from dictlab.data import (
    VIEW_KINDS,
    GroundTruth,
    LRBConfig,
    generate_lrb,
    interference_loss,
    interference_pgd,
    interference_stats,
    planted_hierarchy,
    sample_codes,
)

TINY = {
    "n_features": 128,
    "d_in": 96,
    "d_out": 80,
    "n_sources": 3,
    "sparsity": 0.95,
    "max_interference": 0.3,
    "c_min": 0.25,
    "beta": 2.0,
    "n_train": 20_000,
    "n_val": 2_000,
    "n_test": 2_000,
}
N_PARENTS, N_CHILDREN = 6, 4


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny matrices gain nothing from intra-op threads, which only spin and stall on a busy 2-core CPU."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny():
    return generate_lrb(LRBConfig(**TINY))


@pytest.fixture(scope="module")
def tiny_hierarchy():
    return generate_lrb(LRBConfig(**TINY, n_parents=N_PARENTS, children_per_parent=N_CHILDREN, seed=3))


def within_sigma(observed: float, expected: float, std: float, n_sigma: float = 5.0) -> bool:
    return abs(observed - expected) <= n_sigma * std


# ---------------------------------------------------------------- interference PGD


def test_interference_loss_hand_computed_value():
    cos = 0.6
    features = torch.tensor([[1.0, 0.0], [cos, math.sqrt(1 - cos**2)]], dtype=torch.float64)
    loss, _ = interference_loss(features, 0.3, eps=0.1, neg_weight=0.5)
    # two ordered pairs: (0.6 - 0.2)^2 each, plus 0.5 * 0.6^2 each
    assert loss.item() == pytest.approx(2 * 0.4**2 + 0.5 * 2 * 0.36, abs=1e-12)


def test_interference_loss_gradient_matches_autograd():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(7, 3, generator=generator, dtype=torch.float64)
    features = features / features.norm(dim=1, keepdim=True)
    leaf = features.clone().requires_grad_(True)
    loss, grad = interference_loss(leaf.detach(), 0.2, eps=0.05, neg_weight=0.3)
    gram = leaf @ leaf.T
    off = ~torch.eye(7, dtype=torch.bool)
    reference = ((gram[off] - 0.15).clamp_min(0) ** 2).sum() + 0.3 * (gram[off].clamp_min(0) ** 2).sum()
    reference.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
    assert grad.abs().max() > 0.1
    torch.testing.assert_close(grad, leaf.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("n", "d", "bound", "must_iterate"), [(128, 96, 0.3, False), (200, 64, 0.3, True)])
def test_pgd_reaches_bound_with_unit_rows(n, d, bound, must_iterate):
    features, report = interference_pgd(n, d, bound, generator=torch.Generator().manual_seed(0))
    assert features.shape == (n, d) and features.dtype == torch.float32
    torch.testing.assert_close(features.double().norm(dim=1), torch.ones(n, dtype=torch.float64), atol=1e-6, rtol=0)
    max_signed, max_abs = interference_stats(features)
    assert report.converged and max_signed <= bound
    assert report.max_interference == max_signed and report.max_abs_interference == max_abs
    if must_iterate:  # random 64-d vectors interfere well above 0.3, so PGD had to work
        assert report.iterations > 0
        initial = torch.randn(n, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        assert interference_stats(initial / initial.norm(dim=1, keepdim=True))[0] > bound


def test_pgd_without_steps_returns_normalised_gaussian():
    features, report = interference_pgd(5, 64, 0.9, generator=torch.Generator().manual_seed(4))
    expected = torch.randn(5, 64, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    expected = (expected / expected.norm(dim=1, keepdim=True)).float()
    assert report.iterations == 0
    torch.testing.assert_close(features, expected, atol=0, rtol=0)


def test_pgd_is_deterministic_per_generator_seed():
    first, _ = interference_pgd(60, 16, 0.4, generator=torch.Generator().manual_seed(9))
    again, _ = interference_pgd(60, 16, 0.4, generator=torch.Generator().manual_seed(9))
    other, _ = interference_pgd(60, 16, 0.4, generator=torch.Generator().manual_seed(10))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_pgd_infeasible_bound_raises():
    # 10 unit vectors in the plane always have a pair at angle <= 36 degrees: signed max >= cos(36°) ≈ 0.81
    with pytest.raises(ValueError, match=r"achieved .*infeasible"):
        interference_pgd(10, 2, 0.5, max_iter=200, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kwargs", [{"max_interference": 1.0}, {"step": 0.0}, {"eps": -1.0}])
def test_pgd_rejects_bad_arguments(kwargs):
    arguments = {"max_interference": 0.3} | kwargs
    with pytest.raises(ValueError):
        interference_pgd(10, 4, generator=torch.Generator(), **arguments)


# ---------------------------------------------------------------- codes


def test_matrices_meet_bound_and_are_recorded(tiny):
    matrices = {"features_p": tiny.features_p, "features_r": tiny.features_r}
    matrices |= {f"source_{s}": tiny.source_features[s] for s in (1, 2)}
    assert set(tiny.interference) == set(matrices)
    for name, matrix in matrices.items():
        assert interference_stats(matrix)[0] <= 0.3
        assert tiny.interference[name].max_interference == interference_stats(matrix)[0]
    assert tiny.source_features[0] is tiny.features_p
    assert tiny.features_r.shape == (128, 80)
    meta = json.loads(json.dumps(tiny.meta()))
    assert meta["config"]["max_interference"] == 0.3
    assert len(set(meta["seeds"].values())) == len(meta["seeds"]) == 7  # p, r, 2 sources, 3 splits


def test_activation_rate_and_magnitudes_match_config(tiny):
    codes = tiny.codes("train")
    assert codes.shape == (20_000, 128) and codes.dtype == torch.float32 and (codes >= 0).all()
    active = codes > 0
    rate = 1 - TINY["sparsity"]
    cells = codes.numel()
    assert within_sigma(active.float().mean().item(), rate, math.sqrt(rate * (1 - rate) / cells))
    per_feature_std = math.sqrt(rate * (1 - rate) / codes.shape[0])
    per_feature = active.float().mean(dim=0)
    assert ((per_feature - rate).abs() <= 5 * per_feature_std).all()
    values = codes[active].double()
    beta, c_min = TINY["beta"], TINY["c_min"]
    assert values.min() >= c_min
    assert within_sigma(values.mean().item(), c_min + beta, beta / math.sqrt(values.numel()))
    # exponential: variance beta^2; Var(sample variance) ≈ (mu4 - sigma^4)/m = 8 beta^4 / m
    assert within_sigma(values.var().item(), beta**2, math.sqrt(8 * beta**4 / values.numel()))


def test_generation_is_deterministic_and_seeds_matter(tiny):
    again = generate_lrb(LRBConfig(**TINY))
    other = generate_lrb(LRBConfig(**TINY, seed=1))
    for split in ("train", "val", "test"):
        assert torch.equal(tiny.codes(split), again.codes(split))
        assert not torch.equal(tiny.codes(split), other.codes(split))
    for first, second in zip(tiny.source_features, again.source_features, strict=True):
        assert torch.equal(first, second)
    assert torch.equal(tiny.features_r, again.features_r)
    assert not torch.equal(tiny.features_p, other.features_p)
    assert not torch.equal(tiny.features_r, other.features_r)
    assert tiny.meta() == again.meta() and tiny.meta()["seeds"] != other.meta()["seeds"]


def test_splits_and_matrices_are_independent_draws(tiny):
    assert not torch.equal(tiny.codes("val"), tiny.codes("test"))
    assert not torch.equal(tiny.codes("train")[:2_000], tiny.codes("val"))
    p, r = tiny.features_p, tiny.features_r
    assert not torch.equal(p, tiny.source_features[1]) and not torch.equal(
        tiny.source_features[1], tiny.source_features[2]
    )
    assert not torch.equal(p[:, :80], r)


def test_unknown_split_raises(tiny):
    with pytest.raises(ValueError, match="train, val, test"):
        tiny.codes("validation")


def test_hierarchy_parent_active_iff_any_child(tiny_hierarchy):
    parents = tiny_hierarchy.parents
    assert torch.equal(parents, planted_hierarchy(128, N_PARENTS, N_CHILDREN))
    assert (parents[:N_PARENTS] == -1).all() and (parents[N_PARENTS + N_PARENTS * N_CHILDREN :] == -1).all()
    assert torch.equal(torch.bincount(parents[parents >= 0]), torch.full((N_PARENTS,), N_CHILDREN))
    codes = tiny_hierarchy.codes("train")
    active = codes > 0
    for parent in range(N_PARENTS):
        children = (parents == parent).nonzero().squeeze(1)
        assert torch.equal(active[:, parent], active[:, children].any(dim=1))
    for split in ("val", "test"):
        split_active = tiny_hierarchy.codes(split) > 0
        children_active = split_active[:, N_PARENTS : N_PARENTS * (N_CHILDREN + 1)]
        grouped = children_active.reshape(-1, N_PARENTS, N_CHILDREN).any(dim=2)
        assert torch.equal(split_active[:, :N_PARENTS], grouped)
    rate = 1 - TINY["sparsity"]
    children_rate = active[:, N_PARENTS:].float().mean().item()
    assert within_sigma(children_rate, rate, math.sqrt(rate * (1 - rate) / active[:, N_PARENTS:].numel()))
    parent_values = codes[:, :N_PARENTS][active[:, :N_PARENTS]].double()
    beta, c_min = TINY["beta"], TINY["c_min"]
    assert within_sigma(parent_values.mean().item(), c_min + beta, beta / math.sqrt(parent_values.numel()))
    assert torch.equal(tiny_hierarchy.view("sae").truth.parents, parents)


def test_sample_codes_rejects_nested_hierarchy():
    parents = torch.tensor([-1, 0, 1, -1])
    with pytest.raises(ValueError, match="depth-one"):
        sample_codes(10, 4, sparsity=0.5, c_min=0.0, beta=1.0, parents=parents, generator=torch.Generator())


# ---------------------------------------------------------------- views


def test_views_shapes_and_materialize(tiny):
    batch = tiny.codes("test")[:64]
    sae = tiny.view("sae")
    x_in, x_out = sae.materialize(batch)
    assert (sae.d_in, sae.d_out) == (96, 96) and x_in is x_out
    assert torch.equal(x_in, batch @ tiny.features_p)
    assert torch.equal(sae.truth.features_in, tiny.features_p) and torch.equal(sae.truth.features_out, tiny.features_p)

    transcoder = tiny.view("transcoder")
    x_in, x_out = transcoder.materialize(batch)
    assert (transcoder.d_in, transcoder.d_out) == (96, 80) and x_out.shape == (64, 80)
    assert torch.equal(x_in, batch @ tiny.features_p) and torch.equal(x_out, batch @ tiny.features_r)
    assert torch.equal(transcoder.truth.features_out, tiny.features_r)

    crosscoder = tiny.view("crosscoder")
    x_in, x_out = crosscoder.materialize(batch)
    assert (crosscoder.d_in, crosscoder.d_out) == (288, 288) and x_in is x_out
    expected = torch.cat([batch @ source for source in tiny.source_features], dim=1)
    torch.testing.assert_close(x_in, expected, rtol=1e-6, atol=1e-5)
    truth = crosscoder.truth.features_in
    assert truth.shape == (128, 288)
    torch.testing.assert_close(truth.norm(dim=1), torch.ones(128), atol=1e-6, rtol=0)
    torch.testing.assert_close(truth[:, 96:192] * math.sqrt(3), tiny.source_features[1], atol=1e-6, rtol=0)
    assert crosscoder.truth.meta["view"] == "crosscoder"


def test_one_hot_code_materializes_its_feature(tiny):
    codes = torch.zeros(2, 128)
    codes[0, 17] = 1.0
    codes[1, 5] = 2.5
    x_in, x_out = tiny.view("transcoder").materialize(codes)
    torch.testing.assert_close(x_in[0], tiny.features_p[17])
    torch.testing.assert_close(x_out[1], 2.5 * tiny.features_r[5])


def test_view_rejects_unknown_kind_and_bad_codes(tiny):
    with pytest.raises(ValueError, match=", ".join(VIEW_KINDS)):
        tiny.view("clt")
    with pytest.raises(ValueError, match="codes must be"):
        tiny.view("sae").materialize(torch.zeros(4, 127))


# ---------------------------------------------------------------- ground truth files


def test_ground_truth_save_load_is_bit_exact(tiny_hierarchy, tmp_path):
    for kind in VIEW_KINDS:
        truth = tiny_hierarchy.view(kind).truth
        path = tmp_path / f"{kind}.safetensors"
        truth.save(path)
        loaded = GroundTruth.load(path)
        assert torch.equal(loaded.features_in, truth.features_in)
        assert torch.equal(loaded.features_out, truth.features_out)
        assert torch.equal(loaded.parents, truth.parents) and loaded.parents.dtype == torch.int64
        assert loaded.meta == truth.meta
    bare = GroundTruth(torch.eye(3), torch.eye(3)[:, :2])
    bare.save(tmp_path / "bare.safetensors")
    loaded = GroundTruth.load(tmp_path / "bare.safetensors")
    assert loaded.parents is None and loaded.meta == {} and torch.equal(loaded.features_out, torch.eye(3)[:, :2])


def test_ground_truth_missing_or_corrupt_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing\.safetensors"):
        GroundTruth.load(tmp_path / "nothing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match=r"garbage\.safetensors"):
        GroundTruth.load(garbage)
    good = tmp_path / "good.safetensors"
    GroundTruth(torch.eye(4), torch.eye(4), meta={"a": 1}).save(good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) - 10])
    with pytest.raises(ValueError, match=r"truncated\.safetensors"):
        GroundTruth.load(truncated)
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(data[:-1] + bytes([data[-1] ^ 0x40]))
    with pytest.raises(ValueError, match=r"flipped\.safetensors.*checksum"):
        GroundTruth.load(flipped)


@pytest.mark.parametrize(
    "arguments",
    [
        (torch.eye(3), torch.eye(4)),
        (torch.full((2, 2), float("nan")), torch.eye(2)),
        (torch.eye(3), torch.eye(3), torch.tensor([-1, 0, 5])),
        (torch.eye(3), torch.eye(3), torch.tensor([-1, 1, 0])),
        (torch.eye(3), torch.eye(3), None, {"bad": object()}),
    ],
)
def test_ground_truth_rejects_invalid_data(arguments):
    with pytest.raises(ValueError):
        GroundTruth(*arguments)


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "change",
    [
        {"sparsity": 0.0},
        {"sparsity": 1.0},
        {"sparsity": float("nan")},
        {"max_interference": 0.0},
        {"max_interference": 1.0},
        {"d_in": 0},
        {"d_out": -1},
        {"beta": 0.0},
        {"n_parents": 26, "children_per_parent": 4},  # 130 > 128 features
        {"unknown_field": 1},
    ],
)
def test_invalid_config_raises(change):
    with pytest.raises(ValueError):
        LRBConfig(**(TINY | change))


def test_config_fields_are_documented_and_frozen():
    config = LRBConfig()
    assert all(info.description for info in LRBConfig.model_fields.values())
    assert (config.n_features, config.d_in, config.sparsity, config.max_interference) == (
        1000,
        768,
        0.99,
        0.1,
    )
    LRBConfig(**(TINY | {"n_parents": 25, "children_per_parent": 4}))  # 125 <= 128 fits
    with pytest.raises(ValueError):
        config.seed = 3
