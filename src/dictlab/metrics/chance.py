"""Chance level of the recovery metrics: what a dictionary of random directions scores.

A Maximum Inner Product is only meaningful next to this baseline: with many latents in few dimensions even random
directions have sizeable best-match cosines (≈ 0.35 for 1024 latents in 96 dimensions, ≈ 0.15 for 16000 in 768).
"""

import torch
from torch import Tensor

from dictlab.metrics.recovery import best_match_cosines, max_inner_product


def random_directions(n: int, d: int, seed: int = 0) -> Tensor:
    """``n`` directions drawn uniformly from the unit sphere in R^d (normalised Gaussians): [n, d] float32."""
    if n < 1 or d < 1:
        raise ValueError(f"need n >= 1 and d >= 1, got n={n}, d={d}")
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=generator), dim=1)


@torch.no_grad()
def random_dictionary_mip(truth: Tensor, n_latents: int, seed: int = 0) -> float:
    """MIP that ``n_latents`` uniformly random directions score against ``truth`` [n_features, d].

    Deterministic for a given ``seed``; the spread across seeds is small (a mean over n_features best matches).
    """
    if not isinstance(truth, Tensor) or truth.ndim != 2:
        raise ValueError(f"truth must be a 2-D [n_features, d] tensor, got {getattr(truth, 'shape', type(truth))}")
    if n_latents < 1:
        raise ValueError(f"n_latents must be >= 1, got {n_latents}")
    learned = random_directions(n_latents, truth.shape[1], seed).to(truth.device)
    return max_inner_product(best_match_cosines(learned, truth))
