"""The paper's constructions, built exactly (float64) so that their claims can be checked numerically.

* Theorem 3.3 — :func:`recovering_minimizer`: W_E = [W_pᵀ; 0], W_D = [W_r, 0].
* Theorem 3.4 — :func:`zero_loss_mixture`: W_E = A·W_p⁺, W_D = W_r·A⁻¹ with A ≥ 0 invertible: zero loss, every
  latent a mixture of features (non-identifiability).
* Example 3.5 — :func:`example_3_5`: two features, Top-1∘ReLU, one latent carrying both, one dead latent.
* Theorem 3.6 — :func:`partial_minimum`: for a realizable partition pattern, the decoder of Eq. 55 with encoder
  values from the best rank-one fit of each group's weighted targets, which makes both gradients vanish.
* Theorem 3.8 — :func:`absorb_child`: from a realizable hierarchical (parent → children) pattern, shrink a parent's
  encoder row until its weakest child drops out and add a latent aimed at that child.
"""

from dataclasses import dataclass

import torch
from torch import Tensor

from dictlab.theory.patterns import NotRealizable, Pattern, activation_pattern, is_partition, realize_pattern
from dictlab.theory.surrogate import RELU, Sigma


@dataclass(frozen=True)
class Dictionary:
    """A bias-free dictionary: ``W_enc: [n_p, n_q]``, ``W_dec: [n_q, n_r]`` and its activation."""

    W_enc: Tensor
    W_dec: Tensor
    sigma: Sigma = RELU


def _as64(*tensors: Tensor) -> list[Tensor]:
    return [t.detach().to(torch.float64) for t in tensors]


def recovering_minimizer(features_in: Tensor, features_out: Tensor, n_q: int) -> Dictionary:
    """Theorem 3.3: the first n latents read and write the features exactly, the other n_q − n are zero (ReLU)."""
    features_in, features_out = _as64(features_in, features_out)
    n = features_in.shape[0]
    if n_q < n:
        raise ValueError(f"the recovering minimiser needs n_q ≥ n, got n_q = {n_q} < n = {n}")
    W_enc = torch.zeros(features_in.shape[1], n_q, dtype=torch.float64)
    W_dec = torch.zeros(n_q, features_out.shape[1], dtype=torch.float64)
    W_enc[:, :n] = features_in.T
    W_dec[:n] = features_out
    return Dictionary(W_enc, W_dec)


def zero_loss_mixture(features_in: Tensor, features_out: Tensor, mixing: Tensor | None = None) -> Dictionary:
    """Theorem 3.4 made concrete: W_E = A·W_p⁺ and W_D = W_r·A⁻¹ (ReLU, n_q = n).

    For any code x ≥ 0, W_E·x_p = A·x ≥ 0, so ReLU is the identity and the reconstruction W_r·A⁻¹·A·x = x_r is exact:
    the *full* L_SDL is zero, yet every latent is the mixture A of features. ``mixing`` A defaults to 2I + P (P the
    cyclic shift; A = [[2, 1], [1, 2]] for n = 2, the paper's Figure-4 setting), invertible for every n.
    """
    features_in, features_out = _as64(features_in, features_out)
    n, n_p = features_in.shape
    if n > n_p:
        raise ValueError(f"this construction needs n ≤ n_p (a left inverse of W_p), got n = {n} > n_p = {n_p}")
    if mixing is None:
        A = 2 * torch.eye(n, dtype=torch.float64) + torch.roll(torch.eye(n, dtype=torch.float64), 1, dims=1)
    else:
        A = mixing.to(torch.float64)
    if A.shape != (n, n) or (A < 0).any():
        raise ValueError(f"the mixing matrix must be a nonnegative [{n}, {n}] matrix")
    if torch.linalg.matrix_rank(A) < n:
        raise ValueError("the mixing matrix must be invertible")
    W_E = A @ torch.linalg.pinv(features_in.T)  # [n, n_p], the paper's orientation
    W_D = features_out.T @ torch.linalg.inv(A)  # [n_r, n]
    return Dictionary(W_E.T.contiguous(), W_D.T.contiguous())


def example_3_5() -> tuple[Dictionary, Tensor, Tensor, Tensor]:
    """Example 3.5: (dictionary, features_in, features_out, weights) with W_E* = [[1,1],[0,0]] and
    W_D* = [[½,0],[½,0]] under Top-1∘ReLU, features e_1, e_2 and M_1 = M_2 = 1. L̃ = 1 and both gradients vanish."""
    eye = torch.eye(2, dtype=torch.float64)
    W_E = torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    W_D = torch.tensor([[0.5, 0.0], [0.5, 0.0]], dtype=torch.float64)
    return Dictionary(W_E.T.contiguous(), W_D.T.contiguous(), Sigma("topk", k=1)), eye, eye, torch.ones(2).double()


def stationary_scores(targets: Tensor) -> Tensor:
    """A unit score vector u [m] with all entries > 0 such that (u, D = Tᵀu) is a stationary point of
    ‖T − u·Dᵀ‖² for ``targets`` T [m, r], i.e. an eigenvector of T·Tᵀ; the largest eigenvalue is tried first.

    The top eigenvector is the best rank-one fit; it is positive whenever the targets have nonnegative inner
    products (Perron–Frobenius). In a degenerate eigenspace (e.g. orthogonal targets of equal weight) the
    all-ones direction is projected onto it, which gives the symmetric split of Example 3.5. Raises NotRealizable
    when no eigenvector is positive.
    """
    values, vectors = torch.linalg.eigh(targets @ targets.T)
    ones = torch.ones(targets.shape[0], dtype=targets.dtype)
    for value in values.flip(0).unique_consecutive():
        space = vectors[:, (values - value).abs() <= 1e-9 * values[-1].abs().clamp_min(1e-300)]
        candidates = [space @ (space.T @ ones), *list(space.T)]
        for u in candidates:
            if u.norm() < 1e-12:
                continue
            u = u / u.norm()
            u = u if u.sum() >= 0 else -u
            if (u > 1e-12).all():
                return u
    raise NotRealizable(f"no eigenvector of the {targets.shape[0]} targets' Gram matrix has positive entries")


def partial_minimum(
    features_in: Tensor,
    features_out: Tensor,
    weights: Tensor,
    pattern: Pattern,
    sigma: Sigma = RELU,
    margin: float = 1e-2,
) -> Dictionary:
    """Theorem 3.6: a stationary point of L̃ whose activation pattern is ``pattern`` (a partition of the features).

    Latent i with group ℱ_i takes a positive stationary rank-one fit (u, D) of the targets {√M_d·w_r^d}_{d∈ℱ_i}
    (:func:`stationary_scores`; the best fit when it is positive): decoder row D (which is Eq. 55 for these
    pre-activations) and pre-activations z_d = u_d/√M_d, rescaled (z·s, D/s) so that they clear the firing
    threshold. Stationarity in both blocks makes it a partial minimum, as L̃ is convex in each block on the pattern's
    region (Theorem 3.2). The encoder is then solved to give exactly these values on ℱ_i and stay below the
    threshold elsewhere. Dead latents get zero decoder rows.

    Raises NotRealizable if the pattern is not a partition, a group's fit has a non-positive score, or no encoder
    realises it.
    """
    features_in, features_out, weights = _as64(features_in, features_out, weights)
    n = features_in.shape[0]
    if sigma.kind == "topk":
        raise ValueError("partial_minimum supports relu and jumprelu (TopK patterns depend on competition)")
    if not is_partition(pattern, n):
        raise NotRealizable(f"Theorem 3.6 needs a pattern that partitions the {n} features, got {list(pattern)}")
    values = torch.zeros(n, len(pattern), dtype=torch.float64)
    W_dec = torch.zeros(len(pattern), features_out.shape[1], dtype=torch.float64)
    for i, group in enumerate(pattern):
        if not group:
            continue
        members = sorted(group)
        root = weights[members].sqrt()
        targets = root.unsqueeze(1) * features_out[members]
        try:
            u = stationary_scores(targets)
        except NotRealizable as err:
            raise NotRealizable(f"latent {i} (features {members}): {err}") from err
        D = targets.T @ u
        z = u / root
        scale = max(1.0, (sigma.cutoff + 2 * margin) / z.min().item())
        values[members, i] = z * scale
        W_dec[i] = D / scale
    W_enc = realize_pattern(features_in, pattern, values, sigma.cutoff, margin)
    return Dictionary(W_enc, W_dec, sigma)


def absorb_child(features_in: Tensor, W_enc: Tensor, parent: int, threshold: float) -> tuple[Tensor, int]:
    """Theorem 3.8: (encoder with the parent's weakest child absorbed into a new latent, that child's index).

    ``W_enc`` [n_p, n_q] must realise a hierarchical pattern under JumpReLU(``threshold``): latent ``parent`` fires
    on its children (≥ 2 of them). Its row is scaled by ρ with ρ·a_min < θ < ρ·a_(2) (a_min < a_(2): the two smallest
    child pre-activations) so exactly the weakest child d* drops out, and a new latent α·w_p^{d*} with
    α = 2θ/(1 + M_{d*}) (M_{d*} the largest signed interference of d* with another feature, which must be < 1)
    fires on d* alone. The new latent is appended as the last column.
    """
    features_in, W_enc = _as64(features_in, W_enc)
    if threshold <= 0:
        raise ValueError("absorption needs a positive firing threshold (bias-free ReLU cannot drop a child)")
    sigma = Sigma("jumprelu", threshold)
    children = sorted(activation_pattern(W_enc, features_in, sigma)[parent])
    if len(children) < 2:
        raise NotRealizable(f"latent {parent} fires on {children}: a parent needs at least two children")
    activations = features_in[children] @ W_enc[:, parent]
    order = activations.argsort()
    a_min, a_second = activations[order[0]].item(), activations[order[1]].item()
    if not a_min < a_second:
        raise NotRealizable(f"latent {parent}: its two weakest children tie ({a_min}); no scaling separates them")
    weakest = children[int(order[0])]
    rho = 0.5 * (threshold / a_second + threshold / a_min)
    interference = features_in @ features_in[weakest]
    interference[weakest] = -torch.inf
    M = interference.max().item()
    if M >= 1:
        raise NotRealizable(f"feature {weakest} is parallel to another feature (interference {M}); it cannot be split")
    alpha = 2 * threshold / (1 + M)
    new = W_enc.clone()
    new[:, parent] *= rho
    return torch.cat([new, (alpha * features_in[weakest]).unsqueeze(1)], dim=1), weakest
