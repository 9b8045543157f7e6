"""Codes A: [N, K] ≥ 0 stored by their support, so diagnostics scale to 16k atoms × 100k points."""

import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


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

    def __post_init__(self) -> None:
        nnz = len(self.values)
        if len(self.rows) != nnz or len(self.cols) != nnz:
            raise ValueError(f"codes have {len(self.rows)} rows, {len(self.cols)} cols and {nnz} values")
        if nnz == 0:
            return
        if int(self.rows.min()) < 0 or int(self.rows.max()) >= self.n_points:
            raise ValueError(f"code rows must lie in 0..{self.n_points - 1}")
        if int(self.cols.min()) < 0 or int(self.cols.max()) >= self.n_atoms:
            raise ValueError(f"code columns must lie in 0..{self.n_atoms - 1}")
        key = self.rows * self.n_atoms + self.cols
        if nnz > 1 and not bool((key[1:] > key[:-1]).all()):
            raise ValueError("codes must be in CSR order: sorted by point, then by atom, without repeats")

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
        """The same matrix as a SciPy CSC array [N, K] (columns = atoms, rows sorted within each column); built
        once and shared, so callers must not modify it."""
        return self._csc

    @cached_property
    def _csc(self) -> sp.csc_array:
        order = self._by_atom  # stable: points stay sorted within each atom
        return sp.csc_array(
            (self.values[order].numpy(), self.rows[order].numpy(), self._atom_offsets.numpy()),
            shape=(self.n_points, self.n_atoms),
        )

    def column(self, k: int, csc: sp.csc_array | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(points, values) of atom k's support."""
        csc = self.scipy_csc() if csc is None else csc
        lo, hi = csc.indptr[k], csc.indptr[k + 1]
        return csc.indices[lo:hi], csc.data[lo:hi]

    @cached_property
    def row_offsets(self) -> Tensor:
        """CSR row pointer: entries of point n are ``rows[offsets[n]:offsets[n + 1]]``: [N + 1]."""
        offsets = torch.zeros(self.n_points + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(self.l0_per_point, 0)
        return offsets

    def entries_of(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """The support entries of ``points`` [m]: (entry ids [e], position in ``points`` of each entry's point [e])."""
        counts = self.l0_per_point[points]
        owner = torch.repeat_interleave(torch.arange(len(points)), counts)
        first = torch.cumsum(counts, 0) - counts  # where each point's entries start in the output
        return self.row_offsets[points][owner] + torch.arange(len(owner)) - first[owner], owner

    def atom_entries(self, atoms: Tensor) -> tuple[Tensor, Tensor]:
        """The support entries of ``atoms`` [G], padded to the largest support: (entry ids [G, m], live [G, m]
        marking real entries; padding repeats a real entry id and must be masked by ``live``)."""
        counts = self.counts[atoms]
        slot = torch.arange(int(counts.max()) if len(atoms) else 0)
        live = slot[None, :] < counts[:, None]
        position = (self._atom_offsets[atoms, None] + slot[None, :]).clamp_max(max(self.nnz - 1, 0))
        return self._by_atom[position], live

    @cached_property
    def _by_atom(self) -> Tensor:
        """Entry order sorted by atom (stable, so points stay sorted within an atom): [nnz]."""
        return torch.argsort(self.cols, stable=True)

    def _csr(self, values: Tensor) -> Tensor:
        """A sparse CSR tensor [N, K] with this support and ``values`` [nnz] (in entry order)."""
        return csr_tensor(self.row_offsets, self.cols, values, (self.n_points, self.n_atoms))

    @cached_property
    def _atom_offsets(self) -> Tensor:
        """CSR row pointer of Aᵀ: [K + 1]."""
        offsets = torch.zeros(self.n_atoms + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(self.counts, 0)
        return offsets

    def matmul(self, atoms: Tensor) -> Tensor:
        """A·W: [N, D] for atoms [K, D]."""
        return self._csr(self.values.to(atoms.dtype)) @ atoms

    def t_matmul(self, R: Tensor) -> Tensor:
        """Aᵀ·R: [K, D] for R [N, D]; row k is Σ_n a_nk r_n. SciPy's CSC product (3× torch's transposed CSR here),
        on column blocks of R in torch's thread count (SciPy releases the GIL)."""
        A = sp.csr_array(
            (self.values.to(R.dtype).numpy(), self.cols.numpy(), self.row_offsets.numpy()),
            shape=(self.n_points, self.n_atoms),
        )
        blocks = [b.contiguous().numpy() for b in R.tensor_split(max(1, min(torch.get_num_threads(), R.shape[1])), 1)]
        with ThreadPoolExecutor(len(blocks)) as pool:
            parts = list(pool.map(lambda block: A.T @ block, blocks))
        return torch.from_numpy(np.hstack(parts))

    def entry_dots(self, R: Tensor, atoms: Tensor) -> Tensor:
        """w_kᵀr_n at every support entry (n, k): [nnz] (a sampled product: only the support's dots are formed)."""
        pattern = self._csr(torch.zeros(self.nnz, dtype=R.dtype))
        return torch.sparse.sampled_addmm(pattern, R, atoms.to(R.dtype).T, beta=0.0).values()


def csr_tensor(offsets: Tensor, indices: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """``torch.sparse_csr_tensor`` without invariant checks or its once-per-process "beta" warning; the caller
    guarantees sorted, unique column indices within each row."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(offsets, indices, values, shape, check_invariants=False)
