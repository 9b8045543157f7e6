import itertools
import math

import pytest
import torch

from dictlab.metrics import (
    BestMatch,
    ReconstructionStats,
    abs_cosine_matrix,
    best_match,
    best_match_cosines,
    dead_fraction,
    default_taus,
    feature_subset,
    firing_counts,
    fvu,
    gt_recovery,
    hungarian_match,
    l0,
    max_inner_product,
    mcc,
    random_dictionary_mip,
    random_directions,
    recovery_curve,
    uniqueness,
)


def unit(*components: float) -> torch.Tensor:
    vector = torch.tensor(components, dtype=torch.float64)
    return vector / vector.norm()


def angled_rows(cosine: float, n_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    """truth = e_0..e_{n-1} in R^{n+1}; learned row i = cosine * e_i + sine * e_n, so |cos| = cosine."""
    truth = torch.eye(n_features, n_features + 1, dtype=torch.float64)
    learned = cosine * truth.clone()
    learned[:, n_features] = math.sqrt(1 - cosine**2)
    return learned, truth


# ---- recovery


def expected_max_abs_cosine(d: int, n_latents: int) -> float:
    """E[max_j |cos(u, v_j)|] for n_latents uniform directions v_j in R^d, by quadrature of the exact law.

    |cos| has density ∝ (1 − t²)^((d−3)/2) on [0, 1]; the maximum of n iid draws has CDF F(t)^n and mean
    ∫ (1 − F(t)^n) dt.
    """
    t = torch.linspace(0, 1, 200_001, dtype=torch.float64)
    density = (1 - t**2).clamp(min=0) ** ((d - 3) / 2)
    cdf = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumulative_trapezoid(density, t)])
    cdf = cdf / cdf[-1]
    return torch.trapezoid(1 - cdf**n_latents, t).item()


@pytest.mark.parametrize(("d", "n_latents"), [(16, 64), (96, 1024), (768, 4000)])
def test_random_dictionary_mip_matches_the_exact_chance_level(d: int, n_latents: int) -> None:
    truth = random_directions(400, d, seed=7)
    measured = random_dictionary_mip(truth, n_latents)
    assert measured == random_dictionary_mip(truth, n_latents), "deterministic under its seed"
    assert abs(measured - expected_max_abs_cosine(d, n_latents)) < 0.01


def test_random_dictionary_mip_edge_cases() -> None:
    assert random_dictionary_mip(random_directions(5, 1), 3) == pytest.approx(1.0), "in 1-D every direction is ±e1"
    assert random_directions(10, 4).norm(dim=1).allclose(torch.ones(10))
    with pytest.raises(ValueError, match="2-D"):
        random_dictionary_mip(torch.ones(4), 8)
    with pytest.raises(ValueError, match="n_latents"):
        random_dictionary_mip(torch.eye(3), 0)


def test_signed_scaled_permutation_recovers_everything() -> None:
    truth = torch.eye(4, dtype=torch.float64)
    permutation = torch.tensor([2, 0, 3, 1])
    scales = torch.tensor([2.0, -0.5, -3.0, 7.0], dtype=torch.float64).unsqueeze(1)
    distractors = torch.stack([unit(1, 1, 0, 0), unit(0, 1, 1, 1)])
    learned = torch.cat([truth[permutation] * scales, distractors])

    match = best_match(learned, truth)
    assert isinstance(match, BestMatch)
    torch.testing.assert_close(match.cosines, torch.ones(4, dtype=torch.float64))
    # feature permutation[j] is latent j
    assert match.latent_indices.tolist() == torch.argsort(permutation).tolist()
    assert gt_recovery(match.cosines, 0.99) == 1.0
    assert max_inner_product(match.cosines) == pytest.approx(1.0)
    assert mcc(learned, truth) == pytest.approx(1.0)


def test_known_angle_gives_known_recovery_and_mip() -> None:
    learned, truth = angled_rows(0.9, n_features=5)
    cosines = best_match_cosines(learned, truth)
    torch.testing.assert_close(cosines, torch.full((5,), 0.9, dtype=torch.float64))
    assert gt_recovery(cosines, 0.95) == 0.0
    assert gt_recovery(cosines, 0.85) == 1.0
    assert max_inner_product(cosines) == pytest.approx(0.9)
    assert mcc(learned, truth) == pytest.approx(0.9)


def test_partial_recovery_fraction_and_anchor_exclusion() -> None:
    truth = torch.eye(4, dtype=torch.float64)
    learned = torch.stack([unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0.5, 0, 1, 0), unit(0, 0, 0, 1)])
    cosines = best_match_cosines(learned, truth)
    assert gt_recovery(cosines, 0.95) == 0.75
    keep = feature_subset(4, exclude=[0, 1])
    assert keep.tolist() == [False, False, True, True]
    assert gt_recovery(cosines[keep], 0.95) == 0.5
    assert max_inner_product(cosines[keep]) == pytest.approx((1 / math.sqrt(1.25) + 1) / 2)


def test_recovery_is_strict_at_tau() -> None:
    for dtype in (torch.float32, torch.float64):
        cosines = torch.tensor([0.95, 0.96, 0.5, 1.0], dtype=dtype)
        assert gt_recovery(cosines, 0.95) == 0.5
        assert gt_recovery(cosines, 1.0) == 0.0
        for taus in ([0.95, 1.0], torch.tensor([0.95, 1.0], dtype=torch.float64)):
            assert recovery_curve(cosines, taus)[1].tolist() == [0.5, 0.0]


def test_recovery_curve_defaults_and_agreement_with_gt_recovery() -> None:
    generator = torch.Generator().manual_seed(0)
    cosines = torch.rand(200, generator=generator)
    cosines[:20] = torch.arange(80, 100, dtype=torch.float32) / 100  # values sitting exactly on grid points
    taus, recovery = recovery_curve(cosines)
    assert taus.shape == (51,) and recovery.shape == (51,)
    assert taus[0].item() == pytest.approx(0.5) and taus[-1].item() == pytest.approx(1.0)
    torch.testing.assert_close(default_taus()[1] - default_taus()[0], torch.tensor(0.01, dtype=torch.float64))
    assert bool((recovery[1:] <= recovery[:-1]).all())  # non-increasing in tau
    for tau, value in zip(taus.tolist(), recovery.tolist(), strict=True):
        assert value == gt_recovery(cosines, tau)


def test_chunking_matches_the_full_matrix() -> None:
    generator = torch.Generator().manual_seed(1)
    learned = torch.randn(37, 16, generator=generator)
    truth = torch.randn(9, 16, generator=generator)
    full = abs_cosine_matrix(learned, truth)
    expected_cos, expected_idx = full.max(dim=0)
    for chunk_size in (1, 5, 37, 4096):
        match = best_match(learned, truth, chunk_size=chunk_size)
        torch.testing.assert_close(match.cosines, expected_cos)
        assert match.latent_indices.tolist() == expected_idx.tolist()
    assert float(full.max()) <= 1.0 and float(full.min()) >= 0.0


def test_zero_rows_give_zero_cosine_not_nan() -> None:
    truth = torch.stack([unit(1, 0, 0), torch.zeros(3, dtype=torch.float64)])
    learned = torch.stack([torch.zeros(3, dtype=torch.float64), unit(1, 1, 0)])
    cosines = best_match_cosines(learned, truth)
    assert not torch.isnan(cosines).any()
    torch.testing.assert_close(cosines, torch.tensor([1 / math.sqrt(2), 0.0], dtype=torch.float64))
    assert not math.isnan(mcc(learned, truth))
    all_zero = best_match_cosines(torch.zeros(4, 3), truth)
    assert all_zero.tolist() == [0.0, 0.0]


def test_low_precision_inputs_are_upcast() -> None:
    learned, truth = angled_rows(0.9, n_features=3)
    cosines = best_match_cosines(learned.to(torch.bfloat16), truth.to(torch.float16))
    assert cosines.dtype == torch.float32
    torch.testing.assert_close(cosines, torch.full((3,), 0.9), atol=1e-2, rtol=0)


def test_parameters_with_grad_are_accepted() -> None:
    learned, truth = angled_rows(0.9, n_features=3)
    parameter = torch.nn.Parameter(learned.clone())
    cosines = best_match_cosines(parameter, truth)
    assert not cosines.requires_grad
    assert mcc(parameter, truth) == pytest.approx(0.9)
    assert uniqueness(parameter, truth) == pytest.approx(1.0)


def test_feature_subset_validation() -> None:
    assert feature_subset(3, []).tolist() == [True, True, True]
    assert feature_subset(3, torch.tensor([2, 2])).tolist() == [True, True, False]
    with pytest.raises(ValueError, match="exclude"):
        feature_subset(3, [3])
    with pytest.raises(ValueError, match="exclude"):
        feature_subset(3, [-1])
    with pytest.raises(ValueError, match="integer"):
        feature_subset(3, [1.5])
    with pytest.raises(ValueError, match="n_features"):
        feature_subset(0, [])


@pytest.mark.parametrize(
    ("learned", "truth", "message"),
    [
        (torch.randn(4, 3), torch.randn(2, 5), "dimension d"),
        (torch.randn(4), torch.randn(2, 4), "2-D"),
        (torch.randn(4, 3), torch.randn(2, 3, 1), "2-D"),
        (torch.tensor([[1.0, float("nan")]]), torch.eye(2), "learned contains NaN"),
        (torch.eye(2), torch.tensor([[float("inf"), 0.0]]), "truth contains NaN or Inf"),
        (torch.empty(0, 3), torch.eye(3), "non-empty"),
    ],
)
def test_bad_direction_inputs_raise(learned: torch.Tensor, truth: torch.Tensor, message: str) -> None:
    for metric in (best_match_cosines, mcc, uniqueness):
        with pytest.raises(ValueError, match=message):
            metric(learned, truth)


def test_bad_scalar_inputs_raise() -> None:
    cosines = torch.tensor([0.5, 0.9])
    with pytest.raises(ValueError, match="tau"):
        gt_recovery(cosines, float("nan"))
    with pytest.raises(ValueError, match="best_cosines"):
        gt_recovery(cosines.reshape(1, 2), 0.9)
    with pytest.raises(ValueError, match="NaN"):
        max_inner_product(torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match="chunk_size"):
        best_match(torch.eye(2), torch.eye(2), chunk_size=0)
    with pytest.raises(ValueError, match="taus"):
        recovery_curve(cosines, torch.tensor([0.5, float("nan")]))
    with pytest.raises(ValueError, match="taus"):
        recovery_curve(cosines, [])


# ---- matching


def test_duplicated_latents_cannot_share_a_feature() -> None:
    truth = torch.eye(3, dtype=torch.float64)
    learned = torch.stack([truth[0], 2 * truth[0], truth[1]])  # every latent is an exact copy of some feature
    per_latent_best = abs_cosine_matrix(learned, truth).max(dim=1).values
    torch.testing.assert_close(per_latent_best, torch.ones(3, dtype=torch.float64))
    assert mcc(learned, truth) == pytest.approx(2 / 3)
    assert uniqueness(learned, truth) == pytest.approx(2 / 3)


def test_hungarian_is_one_to_one_not_greedy() -> None:
    truth = torch.eye(3, dtype=torch.float64)[:2]  # features e0, e1 in R^3
    shared = unit(1, 1, 0)  # best match of BOTH features (|cos| = 0.707 each)
    weak = unit(0, 0.1, 1)  # |cos| with e1 is 0.1/sqrt(1.01)
    learned = torch.stack([shared, weak])
    best = best_match(learned, truth)
    assert best.latent_indices.tolist() == [0, 0]
    assert max_inner_product(best.cosines) == pytest.approx(1 / math.sqrt(2))

    matching = hungarian_match(learned, truth)
    assert matching.feature_indices.tolist() == [0, 1]
    assert matching.latent_indices.tolist() == [0, 1]
    expected = (1 / math.sqrt(2) + 0.1 / math.sqrt(1.01)) / 2
    assert mcc(learned, truth) == pytest.approx(expected)


@pytest.mark.parametrize(("n_latents", "n_features"), [(3, 5), (5, 3), (4, 4)])
def test_mcc_equals_brute_force_optimum(n_latents: int, n_features: int) -> None:
    generator = torch.Generator().manual_seed(n_latents * 10 + n_features)
    learned = torch.randn(n_latents, 6, generator=generator, dtype=torch.float64)
    truth = torch.randn(n_features, 6, generator=generator, dtype=torch.float64)
    similarity = abs_cosine_matrix(learned, truth)
    n_pairs = min(n_latents, n_features)
    if n_latents <= n_features:
        best = max(
            sum(similarity[i, j].item() for i, j in enumerate(cols))
            for cols in itertools.permutations(range(n_features), n_pairs)
        )
    else:
        best = max(
            sum(similarity[i, j].item() for j, i in enumerate(rows))
            for rows in itertools.permutations(range(n_latents), n_pairs)
        )
    assert mcc(learned, truth) == pytest.approx(best / n_pairs)
    matching = hungarian_match(learned, truth)
    assert len(set(matching.latent_indices.tolist())) == n_pairs
    assert len(set(matching.feature_indices.tolist())) == n_pairs


def test_uniqueness_alive_mask_and_zero_latents() -> None:
    truth = torch.eye(3, dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)
    learned = torch.stack([truth[0], -truth[0], truth[1] + 0.1 * truth[2], zero])
    # best matches: 0, 0, 1, none (zero row) -> 2 distinct over 4 latents
    assert uniqueness(learned, truth) == pytest.approx(0.5)
    alive = torch.tensor([True, False, True, False])
    assert uniqueness(learned, truth, alive=alive) == pytest.approx(1.0)
    assert uniqueness(learned, truth, chunk_size=1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="alive"):
        uniqueness(learned, truth, alive=torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ValueError, match="alive"):
        uniqueness(learned, truth, alive=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="alive"):
        uniqueness(learned, truth, alive=torch.ones(4))


# ---- reconstruction


def test_fvu_known_values() -> None:
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(50, 8, generator=generator) + 3.0
    mean = x.mean(dim=0, keepdim=True)
    assert fvu(x, x.clone()) == 0.0
    assert fvu(x, mean.expand_as(x)) == pytest.approx(1.0)
    assert fvu(x, mean + 0.5 * (x - mean)) == pytest.approx(0.25)
    assert fvu(x, torch.zeros_like(x)) > 1.0  # predicting zero is worse than the mean when x is offset
    # trailing dims are flattened: a [B, layers, d] crosscoder target gives the same number as [B, layers * d]
    assert fvu(x.reshape(50, 2, 4), (0.5 * x).reshape(50, 2, 4)) == pytest.approx(fvu(x, 0.5 * x))


def test_fvu_bad_inputs() -> None:
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match="same shape"):
        fvu(x, torch.randn(4, 2))
    with pytest.raises(ValueError, match="x_hat contains NaN"):
        fvu(x, torch.full((4, 3), float("nan")))
    with pytest.raises(ValueError, match="zero variance"):
        fvu(torch.ones(4, 3), torch.ones(4, 3))
    with pytest.raises(ValueError, match=r"\[B, d\]"):
        fvu(torch.randn(3), torch.randn(3))


def test_l0_firing_counts_and_dead_fraction() -> None:
    codes = torch.tensor([[0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, 0.0, -1.0, 0.0]])
    assert l0(codes) == pytest.approx(4 / 3)
    counts = firing_counts(codes)
    assert counts.dtype == torch.int64
    assert counts.tolist() == [1, 1, 2, 0]
    assert dead_fraction(counts) == 0.25
    assert dead_fraction(torch.tensor([0, 2, 0, 1])) == 0.5
    with pytest.raises(ValueError, match="codes"):
        l0(codes[0])
    with pytest.raises(ValueError, match="NaN"):
        l0(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        dead_fraction(torch.tensor([1, -1]))


def test_streaming_equals_one_shot() -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(103, 16, generator=generator) * 0.01 + 50.0  # large offset: naive Σx² − (Σx)²/N loses digits
    x_hat = x + 0.002 * torch.randn(103, 16, generator=generator)
    codes = torch.relu(torch.randn(103, 12, generator=generator) - 1.0)
    codes[:, 5] = 0.0  # a dead latent

    stats = ReconstructionStats()
    for start, stop in [(0, 1), (1, 40), (40, 41), (41, 103)]:
        stats.update(x[start:stop], x_hat[start:stop], codes[start:stop])
    result = stats.result()
    assert set(result) == {"l0", "fvu", "dead_fraction"}
    assert result["fvu"] == pytest.approx(fvu(x, x_hat), rel=1e-9)
    assert result["l0"] == pytest.approx(l0(codes), rel=1e-12)
    assert result["dead_fraction"] == dead_fraction(firing_counts(codes))
    assert stats.counts.tolist() == firing_counts(codes).tolist()
    assert stats.n_samples == 103


def test_streaming_bad_inputs() -> None:
    stats = ReconstructionStats()
    with pytest.raises(ValueError, match="no batches"):
        stats.result()
    with pytest.raises(ValueError, match="rows"):
        stats.update(torch.randn(4, 3), torch.randn(4, 3), torch.randn(5, 2))
    stats.update(torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="features per row"):
        stats.update(torch.randn(4, 5), torch.randn(4, 5), torch.randn(4, 2))
    with pytest.raises(ValueError, match="d_sae"):
        stats.update(torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 7))
    with pytest.raises(ValueError, match="x_out contains NaN"):
        stats.update(torch.full((4, 3), float("nan")), torch.randn(4, 3), torch.randn(4, 2))
    constant = ReconstructionStats()
    constant.update(torch.ones(2, 3), torch.ones(2, 3), torch.ones(2, 2))
    with pytest.raises(ValueError, match="zero variance"):
        constant.result()
