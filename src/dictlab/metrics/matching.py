"""One-to-one matching metrics between learned directions and ground-truth features: MCC and uniqueness.

learned: [n_latents, d], truth: [n_features, d], both row-wise; similarity is |cos| (see ``recovery``).
"""

from typing import NamedTuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from dictlab.metrics.recovery import (
    DEFAULT_CHUNK_SIZE,
    abs_cosine_matrix,
    check_direction_pair,
    normalize_rows,
    working_dtype,
)


class Matching(NamedTuple):
    """A one-to-one latent <-> feature assignment with min(n_latents, n_features) pairs, ordered by feature.

    feature_indices, latent_indices: [n_pairs] int64; cosines: [n_pairs] float64, the matched |cos|.
    """

    feature_indices: Tensor
    latent_indices: Tensor
    cosines: Tensor


@torch.no_grad()
def hungarian_match(learned: Tensor, truth: Tensor) -> Matching:
    """Maximum-weight one-to-one matching on the |cos| matrix [n_latents, n_features] (Hungarian algorithm).

    Each latent and each feature is used at most once; either side may be the larger. Runs scipy's
    ``linear_sum_assignment`` on the full float64 matrix on CPU (16000 x 1000: ~130 MB, well under a second).
    """
    similarity = abs_cosine_matrix(learned, truth).to(device="cpu", dtype=torch.float64)
    latent_idx, feature_idx = linear_sum_assignment(similarity.numpy(), maximize=True)
    latent_indices = torch.from_numpy(latent_idx).to(torch.int64)
    feature_indices = torch.from_numpy(feature_idx).to(torch.int64)
    order = torch.argsort(feature_indices)
    latent_indices, feature_indices = latent_indices[order], feature_indices[order]
    return Matching(feature_indices, latent_indices, similarity[latent_indices, feature_indices])


def mcc(learned: Tensor, truth: Tensor) -> float:
    """Mean matched |cos| of the one-to-one Hungarian matching over min(n_latents, n_features) pairs.

    learned: [n_latents, d]; truth: [n_features, d]. Equals 1 only if every feature (or every latent, when
    there are fewer latents) has its own exactly aligned partner; duplicated latents cannot share a feature.
    """
    return hungarian_match(learned, truth).cosines.mean().item()


@torch.no_grad()
def uniqueness(
    learned: Tensor, truth: Tensor, alive: Tensor | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> float:
    """#distinct features that are some latent's best match ÷ #latents (only latents with ``alive`` True).

    learned: [n_latents, d]; truth: [n_features, d]; alive: optional bool [n_latents]. A latent's best match
    is the feature with the largest |cos| (lowest index on ties); an all-zero latent row has no best match but
    still counts in the denominator. Raises ``ValueError`` if no latent is alive.
    """
    check_direction_pair(learned, truth)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if alive is not None:
        if not isinstance(alive, Tensor) or alive.dtype != torch.bool or alive.shape != (learned.shape[0],):
            raise ValueError(
                f"alive must be a bool tensor of shape ({learned.shape[0]},), got "
                f"{getattr(alive, 'dtype', type(alive).__name__)} {tuple(getattr(alive, 'shape', ()))}"
            )
        learned = learned[alive.to(learned.device)]
    n_latents = learned.shape[0]
    if n_latents == 0:
        raise ValueError("uniqueness needs at least one alive latent; the alive mask is all False")
    dtype = working_dtype(learned, truth)
    truth_unit_t = normalize_rows(truth, dtype).T
    matched = torch.zeros(truth.shape[0], dtype=torch.bool, device=truth.device)
    for start in range(0, n_latents, chunk_size):
        chunk_cos = (normalize_rows(learned[start : start + chunk_size], dtype) @ truth_unit_t).abs_()
        best_cos, best_feature = chunk_cos.max(dim=1)
        matched[best_feature[best_cos > 0]] = True
    return matched.sum().item() / n_latents
