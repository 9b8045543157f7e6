"""Ground-truth feature recovery: best-match cosines, GT Recovery, Maximum Inner Product.

Conventions (Linear Representation Bench §3.1): learned directions and ground-truth features are both stored
row-wise, ``learned: [n_latents, d]`` and ``truth: [n_features, d]``. Similarity is the absolute cosine
|cos(learned_j, truth_i)|; the best match of feature i is s_i = max_j |cos(learned_j, truth_i)|.
"""

import math
from collections.abc import Sequence
from numbers import Real
from typing import NamedTuple

import torch
from torch import Tensor

DEFAULT_CHUNK_SIZE = 4096


class BestMatch(NamedTuple):
    """Best-matching latent of every ground-truth feature.

    cosines: [n_features] float, s_i = max_j |cos(learned_j, truth_i)|, in [0, 1].
    latent_indices: [n_features] int64, the j attaining s_i (lowest j on ties).
    """

    cosines: Tensor
    latent_indices: Tensor


def check_direction_pair(learned: Tensor, truth: Tensor) -> None:
    """Raise ``ValueError`` unless learned [n_latents, d] and truth [n_features, d] are usable together."""
    for name, matrix in (("learned", learned), ("truth", truth)):
        if not isinstance(matrix, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(matrix).__name__}")
        if matrix.ndim != 2:
            raise ValueError(f"{name} must be 2-D [rows, d], got shape {tuple(matrix.shape)}")
        if matrix.shape[0] == 0 or matrix.shape[1] == 0:
            raise ValueError(f"{name} must be non-empty, got shape {tuple(matrix.shape)}")
        if matrix.is_complex():
            raise ValueError(f"{name} must be real, got dtype {matrix.dtype}")
        if not torch.isfinite(matrix).all():
            raise ValueError(f"{name} contains NaN or Inf")
    if learned.shape[1] != truth.shape[1]:
        raise ValueError(
            f"learned and truth must share the direction dimension d: learned {tuple(learned.shape)}, "
            f"truth {tuple(truth.shape)}"
        )
    if learned.device != truth.device:
        raise ValueError(f"learned is on {learned.device} but truth is on {truth.device}")


def working_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (half, bfloat16 and integer inputs are upcast)."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def normalize_rows(matrix: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """Rows of matrix [rows, d] scaled to unit l2 norm; all-zero rows stay zero (so their cosines are 0)."""
    matrix = matrix.to(dtype or working_dtype(matrix))
    norms = torch.linalg.vector_norm(matrix, dim=1, keepdim=True)
    return matrix / torch.where(norms > 0, norms, torch.ones_like(norms))


@torch.no_grad()
def abs_cosine_matrix(learned: Tensor, truth: Tensor) -> Tensor:
    """|cos| between every learned row and every truth row: [n_latents, n_features], values in [0, 1].

    Materialises the full matrix (16000 x 1000 float32 = 64 MB); ``best_match`` is chunked and lighter.
    """
    check_direction_pair(learned, truth)
    dtype = working_dtype(learned, truth)
    return (normalize_rows(learned, dtype) @ normalize_rows(truth, dtype).T).abs_().clamp_(max=1.0)


@torch.no_grad()
def best_match(learned: Tensor, truth: Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE) -> BestMatch:
    """For each ground-truth feature, the learned row with the largest |cos| and that |cos|.

    learned: [n_latents, d] (e.g. ``W_enc.T`` or ``W_dec``); truth: [n_features, d]. Rows are l2-normalised
    here; zero rows have cosine 0. Works through the latents ``chunk_size`` rows at a time, so peak extra
    memory is about ``chunk_size * (n_features + d)`` floats. Returns cosines and
    latent_indices, both [n_features].
    """
    check_direction_pair(learned, truth)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    dtype = working_dtype(learned, truth)
    truth_unit_t = normalize_rows(truth, dtype).T
    n_features = truth.shape[0]
    best_cosines = torch.full((n_features,), -1.0, dtype=dtype, device=truth.device)
    best_indices = torch.zeros(n_features, dtype=torch.int64, device=truth.device)
    for start in range(0, learned.shape[0], chunk_size):
        chunk_cos = (normalize_rows(learned[start : start + chunk_size], dtype) @ truth_unit_t).abs_()
        chunk_best, chunk_arg = chunk_cos.max(dim=0)
        improved = chunk_best > best_cosines
        best_cosines = torch.where(improved, chunk_best, best_cosines)
        best_indices = torch.where(improved, chunk_arg + start, best_indices)
    return BestMatch(cosines=best_cosines.clamp_(max=1.0), latent_indices=best_indices)


def best_match_cosines(learned: Tensor, truth: Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Tensor:
    """s_i = max over latents of |cos(learned_j, truth_i)|: [n_features]; ``best_match(...).cosines``."""
    return best_match(learned, truth, chunk_size).cosines


def _check_best_cosines(best_cosines: Tensor) -> None:
    if not isinstance(best_cosines, Tensor):
        raise TypeError(f"best_cosines must be a torch.Tensor, got {type(best_cosines).__name__}")
    if best_cosines.ndim != 1 or best_cosines.numel() == 0:
        raise ValueError(f"best_cosines must be a non-empty 1-D [n_features] tensor, got {tuple(best_cosines.shape)}")
    if not best_cosines.is_floating_point():
        raise ValueError(f"best_cosines must be floating point, got dtype {best_cosines.dtype}")
    if not torch.isfinite(best_cosines).all():
        raise ValueError("best_cosines contains NaN or Inf")


def gt_recovery(best_cosines: Tensor, tau: float) -> float:
    """GT Recovery M_GT = fraction of features with s_i > tau (strict), best_cosines: [n_features].

    The comparison happens in best_cosines' dtype (tau is rounded to it), matching ``recovery_curve``.
    """
    _check_best_cosines(best_cosines)
    if isinstance(tau, bool) or not isinstance(tau, Real) or not math.isfinite(tau):
        raise ValueError(f"tau must be a finite number, got {tau!r}")
    return (best_cosines > tau).to(torch.float64).mean().item()


def max_inner_product(best_cosines: Tensor) -> float:
    """Maximum Inner Product M_IP = mean of s_i over features, best_cosines: [n_features]."""
    _check_best_cosines(best_cosines)
    return best_cosines.to(torch.float64).mean().item()


def default_taus() -> Tensor:
    """Thresholds 0.50, 0.51, ..., 1.00 (51 values, float64)."""
    return torch.arange(50, 101, dtype=torch.float64) / 100


def recovery_curve(best_cosines: Tensor, taus: Tensor | Sequence[float] | None = None) -> tuple[Tensor, Tensor]:
    """M_GT at each threshold: returns (taus [n_taus], recovery [n_taus] float64).

    best_cosines: [n_features]; taus: 1-D tensor or list of floats, default ``default_taus()``. The returned
    taus are cast to best_cosines' dtype (the values actually compared), so ``recovery[k]`` equals
    ``gt_recovery(best_cosines, taus[k])``. A float32 taus tensor is already rounded (0.95 -> 0.9499999881),
    so with float64 cosines pass a list or a float64 tensor.
    """
    _check_best_cosines(best_cosines)
    if taus is None:
        taus = default_taus()
    elif not isinstance(taus, Tensor):
        taus = torch.tensor([float(tau) for tau in taus], dtype=torch.float64)
    if taus.ndim != 1 or taus.numel() == 0:
        raise ValueError("taus must be a non-empty 1-D tensor")
    if not torch.isfinite(taus).all():
        raise ValueError("taus contains NaN or Inf")
    taus = taus.to(dtype=best_cosines.dtype, device=best_cosines.device)
    recovery = (best_cosines.unsqueeze(0) > taus.unsqueeze(1)).to(torch.float64).mean(dim=1)
    return taus, recovery


def feature_subset(n_features: int, exclude: Sequence[int] | Tensor) -> Tensor:
    """Boolean mask [n_features], True for features kept (not in ``exclude``), e.g. to drop anchored features.

    Use as ``best_cosines[mask]`` or ``truth[mask]``. Duplicates in ``exclude`` are allowed.
    """
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"n_features must be a positive int, got {n_features!r}")
    excluded = torch.as_tensor(exclude).reshape(-1)
    if excluded.numel() == 0:
        excluded = excluded.to(torch.int64)
    if excluded.is_floating_point() or excluded.is_complex() or excluded.dtype == torch.bool:
        raise ValueError(f"exclude must hold integer feature indices, got dtype {excluded.dtype}")
    excluded = excluded.to(device="cpu", dtype=torch.int64)
    if excluded.numel() and (excluded.min() < 0 or excluded.max() >= n_features):
        raise ValueError(f"exclude indices must lie in [0, {n_features}), got {excluded.tolist()}")
    mask = torch.ones(n_features, dtype=torch.bool)
    mask[excluded] = False
    return mask
