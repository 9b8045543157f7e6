"""Reconstruction and sparsity metrics: L0, FVU, firing counts, dead fraction, and a streaming accumulator.

Shapes: x (target) and x_hat (reconstruction) are [B, d] (or [B, ...], trailing dims are flattened, e.g. a
crosscoder's [B, n_layers, d]); codes are the latent activations [B, d_sae]. A latent "fires" when its code
is nonzero.
"""

from dataclasses import dataclass

import torch
from torch import Tensor


def _check_finite(name: str, tensor: Tensor) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
    if tensor.is_complex():
        raise ValueError(f"{name} must be real, got dtype {tensor.dtype}")
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or Inf")


def _check_codes(codes: Tensor) -> None:
    _check_finite("codes", codes)
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError(f"codes must be a non-empty 2-D [B, d_sae] tensor, got shape {tuple(codes.shape)}")


def _check_reconstruction_pair(x: Tensor, x_hat: Tensor, x_name: str = "x") -> None:
    _check_finite(x_name, x)
    _check_finite("x_hat", x_hat)
    if x.ndim < 2 or x.shape[0] == 0 or x[0].numel() == 0:
        raise ValueError(f"{x_name} must be a non-empty [B, d] tensor, got shape {tuple(x.shape)}")
    if x.shape != x_hat.shape:
        raise ValueError(f"{x_name} and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    if x.device != x_hat.device:
        raise ValueError(f"{x_name} is on {x.device} but x_hat is on {x_hat.device}")


@torch.no_grad()
def l0(codes: Tensor) -> float:
    """Mean number of nonzero latents per row of codes [B, d_sae]."""
    _check_codes(codes)
    return (codes != 0).sum(dim=1).to(torch.float64).mean().item()


@torch.no_grad()
def fvu(x: Tensor, x_hat: Tensor) -> float:
    """Fraction of variance unexplained Σ‖x − x̂‖² / Σ‖x − mean(x)‖², mean taken over rows; x, x_hat: [B, d].

    Computed in float64. 0 for a perfect reconstruction, 1 for predicting the per-dimension mean.
    Raises ``ValueError`` if x has zero variance (the ratio is undefined).
    """
    _check_reconstruction_pair(x, x_hat)
    x64 = x.reshape(x.shape[0], -1).to(torch.float64)
    x_hat64 = x_hat.reshape(x.shape[0], -1).to(torch.float64)
    total = (x64 - x64.mean(dim=0)).square().sum()
    if total.item() == 0:
        raise ValueError("x has zero variance over the batch; FVU is undefined")
    return ((x64 - x_hat64).square().sum() / total).item()


@torch.no_grad()
def firing_counts(codes: Tensor) -> Tensor:
    """Number of rows in which each latent is nonzero: [d_sae] int64, codes: [B, d_sae]."""
    _check_codes(codes)
    return (codes != 0).sum(dim=0, dtype=torch.int64)


def dead_fraction(counts: Tensor) -> float:
    """Fraction of latents whose firing count is zero; counts: [d_sae] (from ``firing_counts``)."""
    _check_finite("counts", counts)
    if counts.ndim != 1 or counts.numel() == 0:
        raise ValueError(f"counts must be a non-empty 1-D [d_sae] tensor, got shape {tuple(counts.shape)}")
    if (counts < 0).any():
        raise ValueError("counts must be non-negative")
    return (counts == 0).to(torch.float64).mean().item()


@dataclass
class _Sums:
    """The running float64 sums of :class:`ReconstructionStats` (allocated on its first batch)."""

    mean: Tensor
    """Per-dimension mean of x so far: [d]."""
    m2: Tensor
    """Per-dimension sum of squared deviations from the mean: [d]."""
    squared_error: Tensor
    counts: Tensor
    """Per-latent firing counts: [d_sae] int64."""
    nonzero: Tensor


class ReconstructionStats:
    """Streams L0, FVU and dead fraction over batches without holding the data.

    Keeps, in float64 on the first batch's device: the squared-error total, per-dimension count/mean/M2 of x
    (merged batch by batch with Chan et al.'s parallel variance update, which avoids the cancellation of
    Σx² − (Σx)²/N), per-latent firing counts and the nonzero-code total. ``result()`` equals the one-shot
    ``l0``/``fvu``/``dead_fraction`` on the concatenated batches up to float64 rounding.
    """

    def __init__(self) -> None:
        self.n_samples = 0
        self._sums: _Sums | None = None

    @property
    def counts(self) -> Tensor:
        """Per-latent firing counts so far: [d_sae] int64."""
        if self._sums is None:
            raise ValueError("no batches have been added yet")
        return self._sums.counts

    @torch.no_grad()
    def update(self, x_out: Tensor, x_hat: Tensor, codes: Tensor) -> None:
        """Add one batch: x_out (target) [B, d], x_hat [B, d], codes [B, d_sae]."""
        _check_reconstruction_pair(x_out, x_hat, x_name="x_out")
        _check_codes(codes)
        batch = x_out.shape[0]
        if codes.shape[0] != batch:
            raise ValueError(f"codes has {codes.shape[0]} rows but x_out has {batch}")
        x64 = x_out.reshape(batch, -1).to(torch.float64)
        x_hat64 = x_hat.reshape(batch, -1).to(torch.float64)
        firing = codes != 0
        if self._sums is None:
            device = x64.device
            mean = torch.zeros(x64.shape[1], dtype=torch.float64, device=device)
            self._sums = _Sums(
                mean=mean,
                m2=torch.zeros_like(mean),
                squared_error=torch.zeros((), dtype=torch.float64, device=device),
                counts=torch.zeros(codes.shape[1], dtype=torch.int64, device=codes.device),
                nonzero=torch.zeros((), dtype=torch.int64, device=codes.device),
            )
        sums = self._sums
        if x64.shape[1] != sums.mean.shape[0]:
            raise ValueError(f"x_out has {x64.shape[1]} features per row, earlier batches had {sums.mean.shape[0]}")
        if codes.shape[1] != sums.counts.shape[0]:
            raise ValueError(f"codes has d_sae={codes.shape[1]}, earlier batches had {sums.counts.shape[0]}")
        x64 = x64.to(sums.mean.device)
        x_hat64 = x_hat64.to(sums.mean.device)
        firing = firing.to(sums.counts.device)

        batch_mean = x64.mean(dim=0)
        batch_m2 = (x64 - batch_mean).square().sum(dim=0)
        total = self.n_samples + batch
        delta = batch_mean - sums.mean
        sums.mean += delta * (batch / total)
        sums.m2 += batch_m2 + delta.square() * (self.n_samples * batch / total)
        self.n_samples = total
        sums.squared_error += (x64 - x_hat64).square().sum()
        sums.counts += firing.sum(dim=0, dtype=torch.int64)
        sums.nonzero += firing.sum(dtype=torch.int64)

    def result(self) -> dict[str, float]:
        """Keys "l0" (mean nonzeros per sample), "fvu", "dead_fraction" (share of never-fired latents)."""
        sums = self._sums
        if sums is None:
            raise ValueError("no batches have been added yet")
        total_variance = sums.m2.sum().item()
        if total_variance == 0:
            raise ValueError("x_out has zero variance over all batches; FVU is undefined")
        return {
            "l0": sums.nonzero.item() / self.n_samples,
            "fvu": sums.squared_error.item() / total_variance,
            "dead_fraction": dead_fraction(sums.counts),
        }
