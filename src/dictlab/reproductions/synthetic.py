"""Seeded synthetic data of the optimality reproductions (float64 throughout): orthonormal features, uniform
magnitudes, planted parent/child hierarchies, sparse data for the width sweep."""

from dataclasses import dataclass
from typing import Self

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor


def orthonormal_rows(n: int, dim: int, generator: torch.Generator) -> Tensor:
    """``n`` random orthonormal directions in R^dim: [n, dim] float64."""
    if n > dim:
        raise ValueError(f"cannot place {n} orthogonal features in {dim} dimensions")
    Q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    return Q.T[:n].contiguous()


def uniform(n: int, low: float, high: float, generator: torch.Generator, *shape: int) -> Tensor:
    """U(low, high) float64 samples of shape [n, *shape]."""
    return low + (high - low) * torch.rand(n, *shape, generator=generator, dtype=torch.float64)


class HierarchyData(BaseModel):
    """Planted families: each parent fires alone or with exactly one of its children; other features independent."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    dim: int = Field(default=8, gt=0, description="Data dimension D.")
    n_points: int = Field(default=3000, gt=0, description="Data points N.")
    n_families: int = Field(default=1, gt=0, description="Parent features, each with its own children.")
    children_per_family: int = Field(default=1, gt=0, description="Children per parent (mutually exclusive).")
    p_parent_alone: float = Field(
        default=0.3, ge=0, le=1, description="Share of points where a parent fires without a child."
    )
    p_child: float = Field(
        default=0.15, gt=0, le=1, description="Share of points where a parent fires with a given child."
    )
    n_other: int = Field(default=1, ge=0, description="Independent features outside the families.")
    p_other: float = Field(default=0.3, ge=0, le=1, description="Firing probability of each independent feature.")
    magnitude: tuple[float, float] = Field(default=(0.5, 1.5), description="Active magnitudes ~ U(low, high).")
    noise: float = Field(default=0.01, ge=0, description="Std of isotropic Gaussian noise.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.p_parent_alone + self.children_per_family * self.p_child > 1:
            raise ValueError("p_parent_alone + children_per_family · p_child must not exceed 1")
        if self.n_families * (1 + self.children_per_family) + self.n_other > self.dim:
            raise ValueError("more orthogonal GT features than dimensions")
        return self


FAMILIES = HierarchyData(dim=16, n_points=4000, n_families=3, children_per_family=2, p_parent_alone=0.15, p_child=0.1)
"""Three parents with two mutually exclusive children each, in 16 dimensions."""


@dataclass
class Planted:
    """A planted hierarchy: data, its orthonormal GT features, which are active where, and the families."""

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


class WideSweep(BaseModel):
    """One data set (orthogonal nonnegative sparse features, no bias) and the widths to sweep on it."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    name: str = Field(description="Label of the sweep.")
    dim: int = Field(gt=0, description="Data dimension D.")
    n_points: int = Field(gt=0, description="Data points N.")
    n_features: int = Field(gt=0, description="Orthogonal GT features (≤ D).")
    p_active: float = Field(default=0.4, gt=0, le=1, description="Firing probability of each feature.")
    magnitude: tuple[float, float] = Field(default=(0.5, 1.5), description="Active magnitudes ~ U(low, high).")
    noise: float = Field(default=0.01, ge=0, description="Std of isotropic Gaussian noise.")
    widths: tuple[int, ...] = Field(description="Dictionary sizes K.")
    seeds: int = Field(default=3, gt=0, description="Random initialisations per width; the best loss is reported.")


SMALL = WideSweep(name="D=5, N=40", dim=5, n_points=40, n_features=4, widths=(4, 8, 16, 32, 64))
LARGE = WideSweep(
    name="D=8, N=200", dim=8, n_points=200, n_features=8, p_active=0.25, widths=(8, 16, 32, 64, 128, 256), seeds=1
)


def sparse_data(sweep: WideSweep, generator: torch.Generator) -> torch.Tensor:
    """X [N, D]: Bernoulli(p)·U(magnitude) codes on orthonormal features, plus noise."""
    atoms = orthonormal_rows(sweep.n_features, sweep.dim, generator)
    on = torch.rand(sweep.n_points, sweep.n_features, generator=generator, dtype=torch.float64) < sweep.p_active
    codes = on * uniform(sweep.n_points, *sweep.magnitude, generator, sweep.n_features)
    return codes @ atoms + sweep.noise * torch.randn(
        sweep.n_points, sweep.dim, generator=generator, dtype=torch.float64
    )
