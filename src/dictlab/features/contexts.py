"""Token contexts of chosen (latent, row) pairs, with the latent's activation at every token of the context.

Context tokens come from the store's token files (:mod:`dictlab.data.store.tokens`). The activation at a context
token is read from the pass's codes at the row holding that token: rows of one text are contiguous in a store and
ordered by position, so that row is found among the rows within 2·window of the context's own row.
"""

from dataclasses import dataclass

import numpy as np

from dictlab.data.store import ActivationStore
from dictlab.data.store.tokens import SEPARATOR
from dictlab.features.codes import PassCodes


@dataclass(frozen=True)
class PassRows:
    """Text index and token position of every row of the pass, int64 [n_rows] each."""

    text: np.ndarray
    position: np.ndarray

    @classmethod
    def read(cls, store: ActivationStore, first_row: int, n_rows: int) -> "PassRows":
        rows = np.arange(first_row, first_row + n_rows)
        return cls(store.text_index(first_row, first_row + n_rows), store.positions(rows))


@dataclass(frozen=True)
class ContextBlock:
    """Contexts of n (latent, row) pairs: token ids int32 [n, 2w + 1] (SEPARATOR outside the text), the latent's
    activation at each token float32 [n, 2w + 1] (NaN where no pass row holds the token)."""

    tokens: np.ndarray
    values: np.ndarray


def context_block(
    store: ActivationStore, codes: PassCodes, rows_info: PassRows, latents: np.ndarray, rows: np.ndarray, window: int
) -> ContextBlock:
    """Contexts of latent ``latents[i]`` at pass row ``rows[i]`` (both int [n])."""
    tokens = store.contexts(rows + codes.first_row, window)
    n, width = tokens.shape
    values = np.full((n, width), np.nan, np.float32)
    if n == 0:
        return ContextBlock(tokens, values)
    for offset in range(-2 * window, 2 * window + 1):
        other = rows + offset
        inside = (other >= 0) & (other < codes.n_rows)
        safe = np.where(inside, other, 0)
        same_text = inside & (rows_info.text[safe] == rows_info.text[rows])
        column = rows_info.position[safe] - rows_info.position[rows] + window
        hit = same_text & (column >= 0) & (column < width)
        if hit.any():
            found = codes.lookup(safe[hit], latents[hit])
            values[np.flatnonzero(hit), column[hit]] = found
    values[tokens == SEPARATOR] = np.nan
    return ContextBlock(tokens, values)


def trimmed(tokens: np.ndarray, values: np.ndarray, window: int) -> tuple[list[int], int, list[float | None]]:
    """One context row without the SEPARATOR padding: (token ids, index of the row's own token, values with None
    where unknown)."""
    real = np.flatnonzero(tokens != SEPARATOR)
    if real.size == 0:
        return [], 0, []
    lo, hi = int(real[0]), int(real[-1]) + 1
    kept_values = values[lo:hi]
    return (
        tokens[lo:hi].astype(int).tolist(),
        window - lo,
        [None if np.isnan(v) else float(v) for v in kept_values],
    )
