"""The absorption criterion for one class and the words the probe finds in it (Chanin et al., arXiv 2409.14507 §3;
the definitions of ``adamkarvonen/SAEBench`` 0.6.0, ``sae_bench/evals/absorption/feature_absorption_calculator.py``).

For a word x (activation [d]) of the class, with the unit probe direction p, SAE codes f(x) [K] and decoder rows
W_dec [K, d]: cos_k = cos(p, W_dec[k]), the latent's probe projection π_k = f_k(x)·cos_k and the activation's
probe projection π = x·p.

* Absorption fraction: with the main latents M, π_M = Σ_{k∈M} π_k and A = Σ of the ≤ ``max_absorbing_latents``
  largest π_k over k ∉ M with cos_k ≥ ``fraction_cos_threshold`` and π_k > 0: 0 if π_M ≥ π or A/π <
  ``projection_proportion_threshold``; 1 if π_M ≤ 0; else a/(a + π_M) with a = min(A, π − π_M), clipped to [0, 1].
* Full absorption: every main latent is silent (f_k < 1e-8), the latent with the largest π_k has cos ≥
  ``full_cos_threshold``, π ≥ 0 and that latent's π_k/π ≥ ``projection_proportion_threshold``.
"""

from dataclasses import dataclass

import torch
from pydantic import BaseModel, Field
from torch import Tensor

EPS = 1e-8
"""A main latent is silent below this code (SAEBench's EPS)."""


class CriterionOptions(BaseModel):
    """SAEBench's absorption thresholds (``feature_absorption.py``)."""

    full_cos_threshold: float = Field(
        default=0.025, description="Full absorption: the top projecting latent's cosine with the probe is at least this"
    )
    fraction_cos_threshold: float = Field(
        default=0.1, description="Absorption fraction: a candidate absorber's cosine with the probe is at least this."
    )
    projection_proportion_threshold: float = Field(
        default=0.4, description="The absorbing latents carry at least this share of the probe projection (both)."
    )
    max_absorbing_latents: int = Field(
        default=3, ge=1, description="At most this many latents compensate for the main latents (absorption fraction)."
    )
    top_latents: int = Field(default=10, ge=2, description="Latents with the largest probe projection kept per word.")


@dataclass(frozen=True)
class WordVerdict:
    """The criterion on one word."""

    absorption_fraction: float
    full_absorption: bool
    probe_projection: float
    top_latents: list[int]
    """Latents by decreasing probe projection π_k."""
    top_projections: list[float]
    absorbers: list[int]
    """The latents counted in the absorption fraction (empty when it is 0)."""


def probe_cosines(probe_direction: Tensor, decoder: Tensor) -> Tensor:
    """cos(p, W_dec[k]) for every latent: [K] (probe_direction [d], decoder [K, d])."""
    return torch.nn.functional.cosine_similarity(probe_direction.double()[None, :], decoder.double(), dim=-1)


def absorption_verdicts(
    x: Tensor, codes: Tensor, probe_direction: Tensor, decoder: Tensor, main: list[int], options: CriterionOptions
) -> list[WordVerdict]:
    """The criterion for words x [n, d] with SAE codes [n, K], probe direction [d], W_dec [K, d], main latents."""
    p = probe_direction.double() / probe_direction.double().norm()
    cos = probe_cosines(p, decoder)
    proj = codes.double() * cos[None, :]  # π_k per word: [n, K]
    total = x.double() @ p  # π: [n]
    is_main = torch.zeros(decoder.shape[0], dtype=torch.bool)
    is_main[main] = True
    out = []
    for i in range(len(x)):
        pi, pk = float(total[i]), proj[i]
        pi_main = float(pk[is_main].sum())
        candidates = (~is_main) & (cos >= options.fraction_cos_threshold) & (pk > 0)
        values, idx = pk[candidates].sort(descending=True)
        values = values[: options.max_absorbing_latents]
        absorbers = candidates.nonzero().flatten()[idx[: options.max_absorbing_latents]].tolist()
        a_total = float(values.sum())
        share = a_total / pi if pi != 0 else 0.0
        if pi_main >= pi or share < options.projection_proportion_threshold:
            fraction, absorbers = 0.0, []
        elif pi_main <= 0:
            fraction = 1.0
        else:
            a = min(a_total, pi - pi_main)
            fraction = min(max(a / (a + pi_main), 0.0), 1.0)
        top = pk.topk(min(options.top_latents, len(pk)))
        top_ids = top.indices.tolist()
        full = (bool((codes[i, main] < EPS).all()) if main else True) and _full_rest(
            pi, float(top.values[0]), float(cos[top_ids[0]]), options
        )
        out.append(
            WordVerdict(
                absorption_fraction=fraction,
                full_absorption=full,
                probe_projection=pi,
                top_latents=top_ids,
                top_projections=top.values.tolist(),
                absorbers=absorbers,
            )
        )
    return out


def _full_rest(pi: float, top_projection: float, top_cos: float, options: CriterionOptions) -> bool:
    """The full-absorption tests after 'every main latent is silent'."""
    if top_cos < options.full_cos_threshold or pi < 0:
        return False
    if pi == 0:
        return False
    return top_projection / pi >= options.projection_proportion_threshold
