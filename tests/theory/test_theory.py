"""dictlab.theory: every construction passes its check, and a broken construction fails it."""

import pytest
import torch

from dictlab.theory import (
    Dictionary,
    NotRealizable,
    Sigma,
    absorb_child,
    activation_pattern,
    example_3_5,
    is_partition,
    partial_minimum,
    realize_pattern,
    recovering_minimizer,
    zero_loss_mixture,
)
from dictlab.theory.checks import (
    GRADIENT_TOLERANCE,
    check_theorem_3_1,
    features,
    hierarchical_features,
    nonnegative_groups,
    recovering_check,
    stationarity,
    zero_loss_check,
)
from dictlab.theory.surrogate import single_feature_weights


@pytest.fixture(scope="module")
def lrb() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """16 input and 16 output features in 12-d (interference ≤ 0.3) and their single-feature weights."""
    return features(16, 12, 0.3, 0), features(16, 12, 0.3, 1), single_feature_weights(16, 0.99, 2.0)


def test_theorem_3_1_surrogate_gap_and_a_wrong_surrogate() -> None:
    good = check_theorem_3_1(n_samples=50_000)
    assert good.passed and 1.5 <= good.numbers["slope"] <= 2.5
    assert all(gap <= bound for gap, bound in zip(good.numbers["gaps"], good.numbers["bounds"], strict=True))
    wrong = check_theorem_3_1(n_samples=50_000, second_moment=10.0)  # M_d with the wrong second moment
    assert not wrong.passed


def test_theorem_3_3_recovering_minimizer(lrb: tuple) -> None:
    f_in, f_out, weights = lrb
    dictionary = recovering_minimizer(f_in, f_out, n_q=24)
    assert recovering_check(dictionary, f_in, f_out, weights).passed
    swapped = Dictionary(dictionary.W_enc, recovering_minimizer(f_in, f_in, n_q=24).W_dec)  # decoder writes W_p
    assert not recovering_check(swapped, f_in, f_out, weights).passed
    with pytest.raises(ValueError, match="n_q ≥ n"):
        recovering_minimizer(f_in, f_out, n_q=8)


def test_theorem_3_4_zero_loss_without_recovery() -> None:
    f_in, f_out = features(8, 12, 0.3, 0), features(8, 12, 0.3, 1)
    mixture = zero_loss_mixture(f_in, f_out)
    assert zero_loss_check(mixture, f_in, f_out, seed=0, n_samples=5000).passed
    perturbed = Dictionary(mixture.W_enc, mixture.W_dec + 1e-3)
    assert not zero_loss_check(perturbed, f_in, f_out, seed=0, n_samples=5000).passed  # loss no longer zero
    identity = zero_loss_mixture(f_in, f_out, torch.eye(8))
    assert not zero_loss_check(identity, f_in, f_out, seed=0, n_samples=5000).passed  # zero loss but recovers
    with pytest.raises(ValueError, match="nonnegative"):
        zero_loss_mixture(f_in, f_out, torch.eye(8) - 0.1)
    with pytest.raises(ValueError, match="n ≤ n_p"):
        zero_loss_mixture(features(14, 12, 0.3, 0), features(14, 12, 0.3, 1))


def test_example_3_5_is_stationary_and_breaks_when_perturbed() -> None:
    dictionary, f_in, f_out, weights = example_3_5()
    loss, gradient = stationarity(dictionary, f_in, f_out, weights)
    assert loss == pytest.approx(1.0) and gradient < GRADIENT_TOLERANCE
    nudged = Dictionary(dictionary.W_enc, dictionary.W_dec * 1.01, dictionary.sigma)
    assert stationarity(nudged, f_in, f_out, weights)[1] > 1e-3


@pytest.mark.parametrize("sigma", [Sigma("relu"), Sigma("jumprelu", 0.2)])
def test_theorem_3_6_partial_minimum_and_its_failures(lrb: tuple, sigma: Sigma) -> None:
    f_in, f_out, weights = lrb
    pattern = nonnegative_groups(f_out, max_size=3, seed=0)
    pattern += [frozenset()] * (16 - len(pattern))
    assert any(len(g) >= 2 for g in pattern) and is_partition(pattern, 16)
    dictionary = partial_minimum(f_in, f_out, weights, pattern, sigma)
    loss, gradient = stationarity(dictionary, f_in, f_out, weights)
    assert loss > 0 and gradient < GRADIENT_TOLERANCE
    assert activation_pattern(dictionary.W_enc, f_in, sigma) == pattern
    perturbed = Dictionary(dictionary.W_enc, dictionary.W_dec + 1e-3 * torch.randn_like(dictionary.W_dec), sigma)
    assert stationarity(perturbed, f_in, f_out, weights)[1] > 100 * GRADIENT_TOLERANCE
    dropped = [g - {min(pattern[0])} if i == 0 else g for i, g in enumerate(pattern)]  # a feature in no group
    with pytest.raises(NotRealizable, match="partitions"):
        partial_minimum(f_in, f_out, weights, dropped, sigma)


def test_unrealizable_pattern_is_refused() -> None:
    antipodal = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    with pytest.raises(NotRealizable, match=r"latent 0: no encoder direction fires on features \[0, 1\]"):
        realize_pattern(antipodal, [frozenset({0, 1}), frozenset({2})])
    encoder = realize_pattern(antipodal, [frozenset({0, 2}), frozenset({1})])
    assert activation_pattern(encoder, antipodal) == [frozenset({0, 2}), frozenset({1})]


def test_theorem_3_8_absorption() -> None:
    f = hierarchical_features(3, 3, 12, spread=0.8, seed=1)
    parents = [frozenset({0, 1, 2}), frozenset({3, 4, 5}), frozenset({6, 7, 8})]
    encoder = realize_pattern(f, parents, cutoff=0.2)
    absorbed, child = absorb_child(f, encoder, parent=1, threshold=0.2)
    assert child in parents[1]
    expected = [parents[0], parents[1] - {child}, parents[2], frozenset({child})]
    assert activation_pattern(absorbed, f, Sigma("jumprelu", 0.2)) == expected
    weights = single_feature_weights(9, 0.99, 2.0)
    minimum = partial_minimum(f, f, weights, expected, Sigma("jumprelu", 0.2))
    loss, gradient = stationarity(minimum, f, f, weights)
    assert loss > 0 and gradient < GRADIENT_TOLERANCE
    with pytest.raises(ValueError, match="positive firing threshold"):
        absorb_child(f, encoder, parent=1, threshold=0.0)
    single = realize_pattern(f, [frozenset({0}), frozenset(range(1, 9))], cutoff=0.2)
    with pytest.raises(NotRealizable, match="at least two children"):
        absorb_child(f, single, parent=0, threshold=0.2)
