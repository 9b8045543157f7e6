"""Hierarchical (nested-support) pairs and absorption statistics.

For a parent j and child k: if S_k ⊆ S_j and ā_k > 0, E3's right side vanishes, so c_jk = 1 — a parent and a
child that fires only with it cannot both be distinct atoms at a stationary point. Quantitatively, with
m_{k|j} = Σ_{n∈Z_j} a_nk / ‖α_k‖₁ (k's mass where j is silent) and G_j = max_n(−g_jn)_+,

    1 − c_jk ≤ (1 + G_j)·m_{k|j}        (slack = (1 + G_j)·m_{k|j} − (1 − c_jk) ≥ 0 at a stationary point),

so a child that rarely fires without its parent must tilt towards it, or the parent must switch off on the
child's support (absorption).
"""

import math

import numpy as np
import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.diagnostics.pairwise import close_pairs_in_block, pair_cosines
from dictlab.diagnostics.sparse_codes import SparseCodes


class HierarchyPair(BaseModel):
    """One candidate (parent, child) pair: the child is the atom more often co-active with the other."""

    parent: int
    child: int
    cosine: float
    p_parent_given_child: float = Field(description="P(parent active | child active) = |S_p ∩ S_c| / |S_c|.")
    p_child_given_parent: float
    child_mass_outside_parent: float = Field(
        description="m_{c|p}: share of the child's code mass where the parent is silent."
    )
    absorption_ratio: float = Field(description="1 − P(parent | child): share of child-active points the parent left.")
    bound_slack: float = Field(description="(1 + G_p)·m_{c|p} − (1 − c): negative violates the stationarity bound.")
    nested: bool = Field(description="The child never fires without the parent.")


class HierarchySummary(BaseModel):
    """Nested supports among candidate pairs (flagged by the hull test, or requested), and the tilted pairs."""

    n_candidates: int
    n_nested: int
    n_bound_violations: int
    pairs: list[HierarchyPair] = Field(description="Candidates, most nested first (at most 50).")
    n_tilted: int = Field(default=0, description="Pairs in the absorbed configuration (:func:`tilted_pairs`).")
    tilted: list["TiltedPair"] = Field(default_factory=list, description="Tilted pairs, strongest first (at most 50).")


def hierarchy_pairs(
    codes: SparseCodes,
    atoms: Tensor,
    R: Tensor,
    lam: float,
    pairs: Tensor,
    *,
    close_pairs: Tensor | None = None,
    limit: int = 50,
) -> HierarchySummary:
    """Co-activity, mass-outside and bound slack for candidate pairs [M, 2] (either order); the tilted pairs from
    ``close_pairs`` (see :func:`tilted_pairs`' ``candidates``) or their own pass."""
    csc = codes.scipy_csc()
    csc.sort_indices()
    counts = codes.counts.numpy()
    mass = codes.mass.double().numpy()
    W = atoms.double()
    found = []
    for a, b in {tuple(sorted(p)) for p in pairs.tolist() if p[0] != p[1]}:
        if counts[a] == 0 or counts[b] == 0:
            continue
        pa, va = csc.indices[csc.indptr[a] : csc.indptr[a + 1]], csc.data[csc.indptr[a] : csc.indptr[a + 1]]
        pb, vb = csc.indices[csc.indptr[b] : csc.indptr[b + 1]], csc.data[csc.indptr[b] : csc.indptr[b + 1]]
        both = np.intersect1d(pa, pb, assume_unique=True)
        # The child is the atom whose activity depends more on the other.
        parent, child = (a, b) if len(both) / counts[b] >= len(both) / counts[a] else (b, a)
        pc = pb if child == b else pa
        vc = vb if child == b else va
        pp = pa if parent == a else pb
        outside = ~np.isin(pc, pp, assume_unique=True)
        found.append((parent, child, len(both), float(vc[outside].sum() / mass[child]), not outside.any()))
    min_g = _largest_negative_g(R, W, sorted({f[0] for f in found}), lam)
    out: list[HierarchyPair] = []
    for parent, child, n_both, m_outside, nested in found:
        cos = float(W[parent] @ W[child])
        p_pc = float(n_both / counts[child])
        out.append(
            HierarchyPair(
                parent=parent,
                child=child,
                cosine=cos,
                p_parent_given_child=p_pc,
                p_child_given_parent=float(n_both / counts[parent]),
                child_mass_outside_parent=m_outside,
                absorption_ratio=1 - p_pc,
                bound_slack=(1 + min_g[parent]) * m_outside - (1 - cos),
                nested=nested,
            )
        )
    out.sort(key=lambda p: (-p.p_parent_given_child, p.bound_slack))
    tilted = tilted_pairs(codes, atoms, candidates=close_pairs)
    return HierarchySummary(
        n_candidates=len(out),
        n_nested=sum(p.nested for p in out),
        n_bound_violations=sum(p.bound_slack < -1e-9 for p in out),
        pairs=out[:limit],
        n_tilted=len(tilted),
        tilted=tilted[:limit],
    )


def _largest_negative_g(R: Tensor, W: Tensor, parents: list[int], lam: float, block: int = 256) -> dict[int, float]:
    """G_j = max_n(−g_jn)_+ for each atom j of ``parents``, reading R [N, D] once per block of atoms."""
    out: dict[int, float] = {}
    for lo in range(0, len(parents), block):
        ids = parents[lo : lo + block]
        worst = (-(R @ W[ids].T.to(R.dtype)) / lam).clamp_min(0).amax(dim=0)
        out.update(zip(ids, worst.tolist(), strict=True))
    return out


def nested_fraction_matrix(codes: SparseCodes) -> Tensor:
    """P(j active | k active) for every pair as a dense [K, K] matrix (small K only; used by experiments)."""
    B = (codes.to_dense() > 0).double()
    both = B.T @ B
    return both / B.sum(dim=0).clamp_min(1)[None, :]


TILT_COSINE = 0.15
"""A child atom counts as tilted towards a parent above this decoder cosine. On its own this is a weak test where
unrelated atoms interfere (in D = 48 random unit vectors have |c| ≈ 0.14), hence the co-occurrence test below."""
TILT_ABSORPTION = 0.1
"""... the parent must be silent on at least this share of the child's support ..."""
TILT_COOCCURRENCE_Z = 5.0
"""... and the two must fire together more often than chance: the z-score of |S_p ∩ S_c| against its value under
independence, n_c·P(p), is at least this (a hierarchy is what makes a child fire with its parent)."""


class TiltedPair(BaseModel):
    """A (parent, child) pair in the absorbed configuration of §5: the child's atom tilts towards the parent's, the
    two co-fire more often than chance, and the parent is silent on part of the child's support."""

    parent: int
    child: int
    cosine: float = Field(description="c = w_parentᵀw_child.")
    support_parent: int
    support_child: int
    p_parent_given_child: float = Field(description="P(parent active | child active).")
    absorption_ratio: float = Field(description="1 − P(parent | child).")
    cooccurrence_z: float = Field(
        description="(|S_p ∩ S_c| − n_c·P(p)) / √(n_c·P(p)(1 − P(p))): co-firing above chance, in standard errors."
    )


def tilted_pairs(
    codes: SparseCodes,
    atoms: Tensor,
    *,
    min_cosine: float = TILT_COSINE,
    min_absorption: float = TILT_ABSORPTION,
    min_cooccurrence_z: float = TILT_COOCCURRENCE_Z,
    candidates: Tensor | None = None,
    block: int = 1024,
) -> list[TiltedPair]:
    """Every pair of live atoms with c ≥ ``min_cosine`` where the atom with the smaller support (the child) has
    absorption ratio 1 − P(parent | child) ≥ ``min_absorption`` and co-fires with the parent at least
    ``min_cooccurrence_z`` standard errors above chance; strongest cosine first.

    This is the label-free signature of the absorption move (arXiv 2606.02385 §5; docs/optimality.md): it removes
    parent code on the child's points and tilts the child atom towards the parent, which the first-order conditions
    allow — unlike a nested pair, a tilted pair can be stationary. The co-occurrence test keeps the hierarchy's
    trace (the child still fires with its parent far more often than an unrelated atom would), which separates a
    tilt from the chance cosine of unrelated atoms in small D. atoms: [K, D] unit rows. Cost: one blocked fp32 pass
    over W·Wᵀ (skipped when ``candidates`` [C, 2], every live pair whose cosine may reach ``min_cosine``, come
    from :func:`~dictlab.diagnostics.pairwise.pairwise_hull_test`'s pass), exact cosines for the candidates and a
    sorted intersection of the two supports per close pair.
    """
    counts = codes.counts.numpy()
    live = np.flatnonzero(counts > 0)
    if len(live) < 2:
        return []
    if candidates is None:
        W = atoms.float()[torch.from_numpy(live)]
        blocks = [
            close_pairs_in_block((W[lo : lo + block] @ W.T).numpy(), live[lo : lo + block], live, min_cosine)
            for lo in range(0, len(live), block)
        ]
        candidates = torch.from_numpy(np.concatenate(blocks))
    cosines = pair_cosines(atoms.double(), candidates[:, 0], candidates[:, 1])
    close = cosines >= min_cosine
    found = torch.cat([candidates[close].double(), cosines[close, None]], dim=1).numpy()
    if not len(found):
        return []
    csc = codes.scipy_csc()
    csc.sort_indices()
    n_points = codes.n_points

    def support(k: int) -> np.ndarray:
        return csc.indices[csc.indptr[k] : csc.indptr[k + 1]]

    out = []
    for a, b, cos in found:
        a, b = int(a), int(b)
        parent, child = (a, b) if (counts[a], -a) >= (counts[b], -b) else (b, a)
        both = len(np.intersect1d(support(parent), support(child), assume_unique=True))
        p_pc = both / counts[child]
        p_parent = counts[parent] / n_points
        spread = math.sqrt(counts[child] * p_parent * (1 - p_parent))
        z = (both - counts[child] * p_parent) / spread if spread > 0 else 0.0
        if 1 - p_pc >= min_absorption and z >= min_cooccurrence_z:
            out.append(
                TiltedPair(
                    parent=parent,
                    child=child,
                    cosine=float(cos),
                    support_parent=int(counts[parent]),
                    support_child=int(counts[child]),
                    p_parent_given_child=float(p_pc),
                    absorption_ratio=float(1 - p_pc),
                    cooccurrence_z=float(z),
                )
            )
    out.sort(key=lambda p: (-p.cosine, p.parent, p.child))
    return out


HierarchySummary.model_rebuild()
