"""Configuration and result models of ``dictlab reproduce hierarchy`` (planted parent/child features)."""

from dataclasses import dataclass
from typing import Self

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

from dictlab.diagnostics.pairwise import PairVerdict
from dictlab.experiments.optimality.common import TOLERANCE, Claim, orthonormal_rows, uniform

MATCH = 0.99
"""An atom 'is' a GT feature when their cosine exceeds this."""


class HierarchyData(BaseModel):
    """Planted families: each parent fires alone or with exactly one of its children; other features independent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dim: int = Field(8, gt=0, description="Data dimension D.")
    n_points: int = Field(3000, gt=0, description="Data points N.")
    n_families: int = Field(1, gt=0, description="Parent features, each with its own children.")
    children_per_family: int = Field(1, gt=0, description="Children per parent (mutually exclusive).")
    p_parent_alone: float = Field(0.3, ge=0, le=1, description="Share of points where a parent fires without a child.")
    p_child: float = Field(0.15, gt=0, le=1, description="Share of points where a parent fires with a given child.")
    n_other: int = Field(1, ge=0, description="Independent features outside the families.")
    p_other: float = Field(0.3, ge=0, le=1, description="Firing probability of each independent feature.")
    magnitude: tuple[float, float] = Field((0.5, 1.5), description="Active magnitudes ~ U(low, high).")
    noise: float = Field(0.01, ge=0, description="Std of isotropic Gaussian noise.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.p_parent_alone + self.children_per_family * self.p_child > 1:
            raise ValueError("p_parent_alone + children_per_family · p_child must not exceed 1")
        if self.n_families * (1 + self.children_per_family) + self.n_other > self.dim:
            raise ValueError("more orthogonal GT features than dimensions")
        return self


FAMILIES = HierarchyData(dim=16, n_points=4000, n_families=3, children_per_family=2, p_parent_alone=0.15, p_child=0.1)


class HierarchyConfig(BaseModel):
    """Exp 1/2 of reference §10, the ReLU SAE comparison and the several-families version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(0, description="Seed of the data, random initialisations and SAE training.")
    lam: float = Field(0.05, gt=0, description="λ of (P_K); the SAE trains at coefficient 2λ.")
    data: HierarchyData = Field(HierarchyData(), description="The single-family data of ref. §10 Exp 1.")
    families: HierarchyData | None = Field(FAMILIES, description="Several-families data (None: skip).")
    random_inits: int = Field(3, ge=0, description="Random initialisations of the solver per bias setting.")
    sae_widths: tuple[int, ...] = Field((3, 8), description="d_sae of the ReLU SAEs.")
    sae_seeds: int = Field(2, ge=0, description="SAE initialisations per width and bias setting (0: no SAE).")
    sae_steps: int = Field(3000, gt=0, description="Adam steps per SAE.")
    sae_batch_size: int = Field(256, gt=0, description="SAE batch size.")
    sae_lr: float = Field(3e-3, gt=0, description="SAE learning rate.")
    tol: float = Field(1e-10, gt=0, description="Solver stopping tolerance on C2/C3.")
    max_iter: int = Field(5000, gt=0, description="Solver sweep limit.")

    @classmethod
    def quick(cls, seed: int = 0) -> "HierarchyConfig":
        """A reduced run (≈ 10 s) for smoke tests."""
        return cls(
            seed=seed,
            data=HierarchyData(n_points=1500),
            families=FAMILIES.model_copy(update={"n_points": 1500}),
            random_inits=1,
            sae_widths=(3,),
            sae_seeds=1,
            sae_steps=1500,
        )


@dataclass
class Planted:
    X: Tensor
    """[N, D] float64."""
    atoms: Tensor
    """GT features [F, D], orthonormal."""
    active: Tensor
    """[N, F] bool."""
    names: list[str]
    families: list[tuple[int, list[int]]]
    """(parent index, child indices) into the GT features."""


def plant(data: HierarchyData, generator: torch.Generator) -> Planted:
    """Draw GT features and data: per family u ~ U(0,1) picks parent alone, parent + child c, or nothing."""
    size = 1 + data.children_per_family
    n_gt = data.n_families * size + data.n_other
    atoms = orthonormal_rows(n_gt, data.dim, generator)
    N = data.n_points
    active = torch.zeros(N, n_gt, dtype=torch.bool)
    families, names = [], []
    single = data.n_families == 1 and data.children_per_family == 1
    for f in range(data.n_families):
        p = f * size
        u = torch.rand(N, generator=generator, dtype=torch.float64)
        active[:, p] = u < data.p_parent_alone + data.children_per_family * data.p_child
        names.append("parent" if single else f"parent {f}")
        children = []
        for c in range(data.children_per_family):
            lo = data.p_parent_alone + c * data.p_child
            active[:, p + 1 + c] = (u >= lo) & (u < lo + data.p_child)
            children.append(p + 1 + c)
            names.append("child" if single else f"child {f}.{c}")
        families.append((p, children))
    for i in range(data.n_other):
        active[:, data.n_families * size + i] = torch.rand(N, generator=generator) < data.p_other
        names.append("other" if data.n_other == 1 else f"other {i}")
    codes = active * uniform(N, *data.magnitude, generator, n_gt)
    X = codes @ atoms + data.noise * torch.randn(N, data.dim, generator=generator, dtype=torch.float64)
    return Planted(X, atoms, active, names, families)


class PairTilt(BaseModel):
    """How one GT (parent, child) pair is represented: matched atoms, tilt, absorption, the hull verdict."""

    parent: str
    child: str
    parent_atom: int = Field(description="Atom with the largest cosine to the parent GT.")
    child_atom: int = Field(description="Other atom with the largest cosine to the child GT.")
    parent_atom_cos_parent: float
    child_atom_cos_parent: float = Field(description="cos(child atom, parent GT): the tilt.")
    child_atom_cos_child: float
    atom_cosine: float = Field(description="cos(parent atom, child atom).")
    parent_on_child_points: float | None = Field(
        description="Share of the child atom's active points where the parent atom is active (1: no absorption)."
    )
    parent_on_true_child_points: float = Field(description="The same over points where the GT child is present.")
    distinct_gt_pair: bool = Field(
        description=f"Some atom has cosine > {MATCH} to the child GT and another atom to the parent GT."
    )
    e3_lhs: float = Field(description="(1 − c)‖α_child‖₁ (no bias) or (1 − c)ā_child (bias), j = parent atom.")
    e3_rhs: float = Field(description="Σ_{Z_parent} μ a_child (divided by N with a bias): equal at a stationary point.")
    verdict: PairVerdict | None = Field(description="1-D hull/cone test of the (parent atom, child atom) pair.")


class SolverInfo(BaseModel):
    init: str
    converged: bool
    iterations: int
    stationarity: float
    seconds: float


class Assessment(BaseModel):
    """A dictionary with its exact codes on the planted data."""

    label: str
    bias: bool
    n_atoms: int
    n_live_atoms: int
    loss: float = Field(description="(P_K) objective with exact codes.")
    violations: dict[str, float | None] = Field(description="Max relative violation of every check (C1–C3, E1–E4).")
    conditions_hold: bool = Field(description=f"C1–C3 within {TOLERANCE:g}.")
    pairwise_form: str
    n_pairs: int
    n_failing_pairs: int
    n_nested_pairs: int
    pairwise_passes: bool
    p_sums: list[float] = Field(description="Σ_n p_jn = Σ_{Z_j}(1 − g_jn)/N per live atom (= 1 with a bias).")
    cosines_to_gt: list[list[float]] = Field(description="[atom][GT feature].")
    pairs: list[PairTilt]
    solver: SolverInfo | None = None


class SaeRun(BaseModel):
    width: int
    bias: bool
    seed: int
    steps: int
    train_seconds: float
    train_loss: float = Field(description="Last batch's SAE loss (squared error + coefficient · penalty).")
    encoder_l0: float = Field(description="Mean active latents of the encoder on the data.")
    assessment: Assessment


class FamiliesResults(BaseModel):
    data: HierarchyData
    gt: Assessment
    solver: list[Assessment]


class HierarchyResults(BaseModel):
    config: HierarchyConfig
    gt: list[Assessment] = Field(description="GT atoms with exact codes: without a bias, and with b = 0.")
    solver: list[Assessment]
    sae: list[SaeRun]
    families: FamiliesResults | None
    claims: list[Claim]
    seconds: dict[str, float]
