"""One streaming pass of a dictionary over store rows, keeping only the nonzero codes.

Memory is rows × L0 (the nonzero entries), never rows × latents: a TopK SAE with k = 32 over 1M rows keeps 32M
entries (≈ 384 MiB as int32 rows and latents + float32 values). The dense [chunk, d_sae] codes of one chunk exist
only while that chunk is encoded.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dictlab.data.store import ActivationStore
from dictlab.models.dictionary import SparseDictionary
from dictlab.progress import progress_bar


@dataclass(frozen=True)
class PassCodes:
    """The nonzero codes of rows ``first_row : first_row + n_rows`` in row-major order.

    Entry e is latent ``latents[e]`` of pass row ``rows[e]`` (0-based within the pass) with value ``values[e]``;
    ``rows`` is nondecreasing and, within a row, ``latents`` increase.
    """

    rows: np.ndarray
    """int32 [nnz]."""
    latents: np.ndarray
    """int32 [nnz]."""
    values: np.ndarray
    """float32 [nnz], all > 0 for ReLU-type activations (nonzero in general)."""
    n_rows: int
    d_sae: int
    first_row: int

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    def lookup(self, rows: np.ndarray, latents: np.ndarray) -> np.ndarray:
        """Code of latent ``latents[i]`` at pass row ``rows[i]`` (0 where it is not active): float32, the shape of
        ``rows``. One binary search over the entries' row-major keys."""
        keys = self.rows.astype(np.int64) * self.d_sae + self.latents
        query = rows.astype(np.int64) * self.d_sae + latents.astype(np.int64)
        where = np.clip(np.searchsorted(keys, query.ravel()), 0, max(self.nnz - 1, 0))
        found = keys[where] == query.ravel() if self.nnz else np.zeros(query.size, bool)
        out = np.where(found, self.values[where] if self.nnz else 0, 0).astype(np.float32)
        return out.reshape(rows.shape)


def _chunk_codes(dictionary: SparseDictionary, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(rows, latents, values) of the nonzero codes of x [n, d_in], row-major; TopK-family dictionaries use the
    sparse path (one encoder product, then only the selected entries)."""
    if dictionary.has_sparse_path:
        pre = dictionary.pre_activations(x)
        active = dictionary.activation.select(pre)
        assert active is not None
        values = torch.relu(active.pre)
        order = torch.argsort(active.rows * dictionary.d_sae + active.cols)  # selection order within a row varies
        rows, cols, values = active.rows[order], active.cols[order], values[order]
    else:
        codes = dictionary.encode(x)
        rows, cols = codes.nonzero(as_tuple=True)
        values = codes[rows, cols]
    keep = values != 0
    return rows[keep], cols[keep], values[keep]


def encode_store(
    dictionary: SparseDictionary,
    store: ActivationStore,
    first_row: int,
    n_rows: int,
    *,
    chunk_rows: int = 4096,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> PassCodes:
    """Encode store rows ``first_row : first_row + n_rows`` chunk by chunk (float32, eval mode, no gradient).

    ``on_chunk(rows_done)`` is called after every chunk (progress reporting beyond the bar).
    """
    rows_parts: list[np.ndarray] = []
    latent_parts: list[np.ndarray] = []
    value_parts: list[np.ndarray] = []
    device = dictionary.W_enc.device
    was_training = dictionary.training
    dictionary.eval()
    bar = progress_bar(total=n_rows, unit=" rows", unit_scale=True, enabled=progress, desc="features: encode")
    try:
        with torch.inference_mode(), bar:
            for start in range(0, n_rows, chunk_rows):
                stop = min(start + chunk_rows, n_rows)
                block = store.read(first_row + start, first_row + stop)
                x = torch.from_numpy(block).to(device=device, dtype=dictionary.W_enc.dtype)
                rows, cols, values = _chunk_codes(dictionary, x)
                rows_parts.append((rows + start).to(torch.int32).cpu().numpy())
                latent_parts.append(cols.to(torch.int32).cpu().numpy())
                value_parts.append(values.float().cpu().numpy())
                bar.update(stop - start)
                if on_chunk is not None:
                    on_chunk(stop)
    finally:
        dictionary.train(was_training)

    def joined(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    return PassCodes(
        rows=joined(rows_parts, np.int32),
        latents=joined(latent_parts, np.int32),
        values=joined(value_parts, np.float32),
        n_rows=n_rows,
        d_sae=dictionary.d_sae,
        first_row=first_row,
    )
