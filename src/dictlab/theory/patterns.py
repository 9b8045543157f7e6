"""Activation patterns (Definition 3.1): which features switch on which latent when present alone.

𝒫 = (ℱ_1, …, ℱ_{n_q}) with ℱ_i = {d : σ(w_p^d·W_enc)_i > 0}. A pattern is polysemantic if some |ℱ_i| ≥ 2,
realizable if some encoder produces it, and ℱ_i = ∅ is a dead latent. Realizability of a pattern under a
threshold activation is a linear feasibility problem per latent, solved here with HiGHS.
"""

from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linprog
from torch import Tensor

from dictlab.theory.surrogate import RELU, Sigma

Pattern = list[frozenset[int]]


class NotRealizable(ValueError):
    """No encoder produces the requested pattern; the message names the latent and its feature sets."""


def activation_pattern(W_enc: Tensor, features_in: Tensor, sigma: Sigma = RELU) -> Pattern:
    """ℱ_i for every latent of ``W_enc`` [n_p, n_q] on unit features ``features_in`` [n, n_p]."""
    codes = sigma(features_in @ W_enc)  # [n, n_q]
    return [frozenset(torch.nonzero(codes[:, i] > 0).flatten().tolist()) for i in range(W_enc.shape[1])]


def is_partition(pattern: Sequence[frozenset[int]], n: int) -> bool:
    """Whether the non-empty ℱ_i are disjoint and cover all n features (dead latents allowed)."""
    seen: set[int] = set()
    for group in pattern:
        if group & seen:
            return False
        seen |= group
    return seen == set(range(n))


def is_polysemantic(pattern: Sequence[frozenset[int]]) -> bool:
    return any(len(group) >= 2 for group in pattern)


def realize_pattern(
    features_in: Tensor,
    pattern: Sequence[frozenset[int]],
    values: Tensor | None = None,
    cutoff: float = 0.0,
    margin: float = 1e-2,
    bound: float = 1e3,
) -> Tensor:
    """An encoder W_enc [n_p, n_q] whose latent i fires (pre-activation > ``cutoff``) on exactly the features ℱ_i.

    Args:
        features_in: [n, n_p] feature directions w_p^d.
        pattern: ℱ_i per latent.
        values: optional [n, n_q] required pre-activations z_d,i for d ∈ ℱ_i (equalities); otherwise active
            pre-activations only need to exceed ``cutoff + margin``.
        cutoff: the activation's firing threshold (0 for ReLU, θ for JumpReLU).
        margin: inactive pre-activations are at most ``cutoff − margin``.

    Raises NotRealizable naming the first latent for which no encoder column exists.
    """
    n, n_p = features_in.shape
    F = features_in.detach().to(torch.float64).cpu().numpy()
    columns = []
    for i, group in enumerate(pattern):
        active = sorted(group)
        inactive = [d for d in range(n) if d not in group]
        if any(d < 0 or d >= n for d in active):
            raise ValueError(f"latent {i}: pattern names features {active} outside 0..{n - 1}")
        A_ub = [F[d] for d in inactive]
        b_ub = [cutoff - margin] * len(inactive)
        A_eq, b_eq = None, None
        if values is not None and active:
            A_eq = F[active]
            b_eq = values[active, i].detach().to(torch.float64).cpu().numpy()
        else:
            A_ub += [-F[d] for d in active]
            b_ub += [-(cutoff + margin)] * len(active)
        result = linprog(
            np.zeros(n_p),
            A_ub=np.array(A_ub) if A_ub else None,
            b_ub=np.array(b_ub) if b_ub else None,
            A_eq=A_eq,
            b_eq=b_eq,
            bounds=[(-bound, bound)] * n_p,
            method="highs",
        )
        if result.status != 0:
            raise NotRealizable(
                f"latent {i}: no encoder direction fires on features {active} and on none of {inactive} "
                f"(threshold {cutoff}): {result.message}"
            )
        w = result.x
        if A_eq is not None:  # polish the equalities to round-off (least-norm correction)
            w = w + np.linalg.lstsq(A_eq, b_eq - A_eq @ w, rcond=None)[0]
        columns.append(torch.from_numpy(w))
    W_enc = torch.stack(columns, dim=1)
    found = activation_pattern(W_enc, features_in.to(torch.float64), Sigma("jumprelu", cutoff))
    if found != [frozenset(g) for g in pattern]:
        raise NotRealizable(f"the solved encoder realises {found}, not {list(pattern)} (numerical trouble)")
    return W_enc
