"""Codes A: [N, K] ≥ 0 stored by their support, so diagnostics scale to 16k atoms × 100k points."""

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

ENTRY_CHUNK = 1 << 14
"""Support entries processed per chunk in gathers (bounds temporary memory to chunk × D)."""


@dataclass(frozen=True)
class SparseCodes:
    """Nonzero codes in CSR order: entry e is a_{rows[e], cols[e]} = values[e] > 0."""

    rows: Tensor
    """[nnz] int64, nondecreasing."""
    cols: Tensor
    """[nnz] int64."""
    values: Tensor
    """[nnz] > 0."""
    n_points: int
    n_atoms: int

    @classmethod
    def from_dense(cls, codes: Tensor) -> "SparseCodes":
        """From dense codes [N, K] (entries ≤ 0 are treated as inactive)."""
        return cls.from_chunks([codes], codes.shape[1])

    @classmethod
    def from_chunks(cls, chunks: Iterable[Tensor], n_atoms: int) -> "SparseCodes":
        """From consecutive dense row blocks [B_i, K] without materialising the whole [N, K] matrix."""
        rows, cols, values, offset = [], [], [], 0
        for chunk in chunks:
            r, c = torch.nonzero(chunk > 0, as_tuple=True)
            rows.append(r + offset)
            cols.append(c)
            values.append(chunk[r, c])
            offset += chunk.shape[0]
        return cls(torch.cat(rows), torch.cat(cols), torch.cat(values), offset, n_atoms)

    def to(self, dtype: torch.dtype) -> "SparseCodes":
        """The same codes with values of ``dtype``."""
        if dtype == self.dtype:
            return self
        return SparseCodes(self.rows, self.cols, self.values.to(dtype), self.n_points, self.n_atoms)

    @property
    def nnz(self) -> int:
        return len(self.values)

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @cached_property
    def mass(self) -> Tensor:
        """‖α_k‖₁ = Σ_n a_nk: [K]."""
        return torch.zeros(self.n_atoms, dtype=self.dtype).index_add_(0, self.cols, self.values)

    @cached_property
    def counts(self) -> Tensor:
        """|S_k|, the number of points where atom k is active: [K]."""
        return torch.bincount(self.cols, minlength=self.n_atoms)

    @property
    def mean(self) -> Tensor:
        """ā_k = ‖α_k‖₁ / N: [K]."""
        return self.mass / self.n_points

    @property
    def density(self) -> Tensor:
        """|S_k| / N: [K]."""
        return self.counts.to(self.dtype) / self.n_points

    @cached_property
    def l1_per_point(self) -> Tensor:
        """‖a_n‖₁: [N]."""
        return torch.zeros(self.n_points, dtype=self.dtype).index_add_(0, self.rows, self.values)

    @cached_property
    def l0_per_point(self) -> Tensor:
        """‖a_n‖₀: [N]."""
        return torch.bincount(self.rows, minlength=self.n_points)

    def to_dense(self) -> Tensor:
        out = torch.zeros(self.n_points, self.n_atoms, dtype=self.dtype)
        out[self.rows, self.cols] = self.values
        return out

    def scipy_csc(self) -> sp.csc_array:
        """The same matrix as a SciPy CSC array [N, K] (columns = atoms, rows sorted within each column)."""
        return sp.csc_array(
            (self.values.numpy(), (self.rows.numpy(), self.cols.numpy())), shape=(self.n_points, self.n_atoms)
        )

    def column(self, k: int, csc: sp.csc_array | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(points, values) of atom k's support."""
        csc = self.scipy_csc() if csc is None else csc
        lo, hi = csc.indptr[k], csc.indptr[k + 1]
        return csc.indices[lo:hi], csc.data[lo:hi]

    def matmul(self, atoms: Tensor) -> Tensor:
        """A·W: [N, D] for atoms [K, D]."""
        out = torch.zeros(self.n_points, atoms.shape[1], dtype=atoms.dtype)
        for lo in range(0, self.nnz, ENTRY_CHUNK):
            sl = slice(lo, lo + ENTRY_CHUNK)
            out.index_add_(0, self.rows[sl], self.values[sl, None].to(atoms.dtype) * atoms[self.cols[sl]])
        return out

    def t_matmul(self, R: Tensor) -> Tensor:
        """Aᵀ·R: [K, D] for R [N, D]; row k is Σ_n a_nk r_n."""
        out = torch.zeros(self.n_atoms, R.shape[1], dtype=R.dtype)
        for lo in range(0, self.nnz, ENTRY_CHUNK):
            sl = slice(lo, lo + ENTRY_CHUNK)
            out.index_add_(0, self.cols[sl], self.values[sl, None].to(R.dtype) * R[self.rows[sl]])
        return out

    def entry_dots(self, R: Tensor, atoms: Tensor) -> Tensor:
        """w_kᵀr_n at every support entry (n, k): [nnz]."""
        out = torch.empty(self.nnz, dtype=R.dtype)
        for lo in range(0, self.nnz, ENTRY_CHUNK):
            sl = slice(lo, lo + ENTRY_CHUNK)
            out[sl] = (R[self.rows[sl]] * atoms[self.cols[sl]]).sum(dim=1)
        return out
