"""Per-latent statistics of one pass's nonzero codes: firing counts, mean and max, histograms, the exact top rows,
rows sampled across activation quantiles, co-firing and label association.

Everything is computed from :class:`~dictlab.features.codes.PassCodes` after the pass, with one sort of the entries
by (latent, value descending, row), so every result is exact and does not depend on the chunking of the pass.
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from dictlab.features.codes import PassCodes


@dataclass(frozen=True)
class SortedCodes:
    """The entries of a pass grouped by latent, each latent's largest value first (ties: lower row first)."""

    rows: np.ndarray
    """int32 [nnz]: pass row of each entry, in the grouped order."""
    values: np.ndarray
    """float32 [nnz]."""
    starts: np.ndarray
    """int64 [d_sae + 1]: latent i's entries are ``starts[i]:starts[i + 1]``."""

    @classmethod
    def of(cls, codes: PassCodes) -> "SortedCodes":
        by_value = np.argsort(-codes.values, kind="stable")  # entries are row-major: ties keep row order
        order = by_value[np.argsort(codes.latents[by_value], kind="stable")]
        counts = np.bincount(codes.latents, minlength=codes.d_sae)
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(codes.rows[order], codes.values[order], starts)

    @property
    def counts(self) -> np.ndarray:
        """Firing rows per latent, int64 [d_sae]."""
        return np.diff(self.starts)


def firing_summary(sorted_codes: SortedCodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(count int64 [d_sae], mean float64 [d_sae], max float64 [d_sae]) of the nonzero activations (0 when dead)."""
    counts = sorted_codes.counts
    latent_of = np.repeat(np.arange(counts.size), counts)
    sums = np.bincount(latent_of, weights=sorted_codes.values.astype(np.float64), minlength=counts.size)
    means = np.divide(sums, counts, out=np.zeros(counts.size), where=counts > 0)
    first = np.minimum(sorted_codes.starts[:-1], max(sorted_codes.values.size - 1, 0))
    maxima = np.where(counts > 0, sorted_codes.values[first] if sorted_codes.values.size else 0.0, 0.0)
    return counts, means, maxima.astype(np.float64)


def histograms(sorted_codes: SortedCodes, maxima: np.ndarray, bins: int) -> np.ndarray:
    """Nonzero activations per bin, int64 [d_sae, bins]: bin b of latent i holds values in
    [b·max_i/bins, (b + 1)·max_i/bins), the last bin also max_i itself. A value's bin is
    ``min(floor(bins · v / max_i), bins − 1)`` (computed in float64)."""
    counts = sorted_codes.counts
    latent_of = np.repeat(np.arange(counts.size), counts)
    scale = np.where(maxima > 0, bins / np.where(maxima > 0, maxima, 1.0), 0.0)
    which = np.minimum(np.floor(sorted_codes.values.astype(np.float64) * scale[latent_of]), bins - 1).astype(np.int64)
    flat = np.bincount(latent_of * bins + np.maximum(which, 0), minlength=counts.size * bins)
    return flat.reshape(counts.size, bins)


def top_entries(sorted_codes: SortedCodes, latent: int, n: int) -> np.ndarray:
    """Positions (in the sorted entries) of latent ``latent``'s ``n`` largest activations, largest first."""
    start, stop = int(sorted_codes.starts[latent]), int(sorted_codes.starts[latent + 1])
    return np.arange(start, min(stop, start + n))


def quantile_bands(count: int, bands: int, per_band: int) -> list[tuple[int, int, np.ndarray]]:
    """Bands of a latent's ``count`` activations by rank, lowest quantile first: (lo, hi, ranks) where the band
    holds ascending ranks [lo, hi) and ``ranks`` are up to ``per_band`` of them evenly spaced (deterministic)."""
    out = []
    for band in range(bands):
        lo, hi = band * count // bands, (band + 1) * count // bands
        size = hi - lo
        take = min(per_band, size)
        ranks = lo + (np.arange(take) * 2 + 1) * size // (2 * take) if take else np.zeros(0, np.int64)
        out.append((lo, hi, ranks.astype(np.int64)))
    return out


def cofiring_neighbours(
    codes: PassCodes, counts: np.ndarray, n: int, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` latents whose firing rows are most similar to each latent's (Jaccard index |A∩B| / |A∪B|),
    excluding itself: (latents int64 [d_sae, n], scores float64 [d_sae, n]), −1 / 0 where fewer exist. Exact:
    the co-firing counts are one sparse product AᵀA of the binary [rows, d_sae] firing matrix, a block of
    latents at a time ([block, d_sae] dense at most)."""
    d_sae = codes.d_sae
    ones = np.ones(codes.nnz, np.float32)
    firing = sp.csr_array((ones, (codes.rows, codes.latents)), shape=(codes.n_rows, d_sae))
    by_latent = firing.T.tocsr()
    latents = np.full((d_sae, n), -1, np.int64)
    scores = np.zeros((d_sae, n))
    if n == 0:
        return latents, scores
    for start in range(0, d_sae, block):
        stop = min(start + block, d_sae)
        together = (by_latent[start:stop] @ firing).toarray().astype(np.float64)  # [block, d_sae]
        union = counts[start:stop, None] + counts[None, :] - together
        jaccard = np.divide(together, union, out=np.zeros_like(together), where=union > 0)
        jaccard[np.arange(stop - start), np.arange(start, stop)] = -1.0  # never its own neighbour
        best = torch.topk(torch.from_numpy(jaccard), min(n, d_sae), dim=1)
        values, indices = best.values.numpy(), best.indices.numpy()
        real = values > 0
        latents[start:stop][:, : indices.shape[1]] = np.where(real, indices, -1)
        scores[start:stop][:, : values.shape[1]] = np.where(real, values, 0.0)
    return latents, scores


def decoder_neighbours(W_dec: torch.Tensor, n: int, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` latents whose decoder rows have the largest cosine with each latent's, excluding itself:
    (latents int64 [d_sae, n], cosines float64 [d_sae, n]); ``W_dec``: [d_sae, d_out]."""
    unit = torch.nn.functional.normalize(W_dec.detach().float(), dim=1)
    d_sae = unit.shape[0]
    take = min(n, d_sae - 1)
    latents = np.full((d_sae, n), -1, np.int64)
    cosines = np.zeros((d_sae, n))
    for start in range(0, d_sae, block):
        stop = min(start + block, d_sae)
        cos = unit[start:stop] @ unit.T
        cos[torch.arange(stop - start), torch.arange(start, stop)] = -float("inf")
        best = torch.topk(cos, take, dim=1)
        latents[start:stop, :take] = best.indices.numpy()
        cosines[start:stop, :take] = best.values.double().numpy()
    return latents, cosines


def label_counts(codes: PassCodes, labels: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """(firing rows of each latent per label int64 [d_sae, n_labels], rows per label int64 [n_labels]);
    ``labels``: int64 [n_rows] label of every pass row."""
    per_entry = labels[codes.rows]
    joint = np.bincount(codes.latents.astype(np.int64) * n_labels + per_entry, minlength=codes.d_sae * n_labels)
    return joint.reshape(codes.d_sae, n_labels), np.bincount(labels, minlength=n_labels)


def detection_scores(
    joint: np.ndarray, counts: np.ndarray, per_label: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, F1), float64 [d_sae, n_labels] each: the latent predicts the label wherever it fires."""
    precision = np.divide(joint, counts[:, None], out=np.zeros(joint.shape), where=counts[:, None] > 0)
    recall = np.divide(joint, per_label[None, :], out=np.zeros(joint.shape), where=per_label[None, :] > 0)
    total = precision + recall
    f1 = np.divide(2 * precision * recall, total, out=np.zeros(joint.shape), where=total > 0)
    return precision, recall, f1
