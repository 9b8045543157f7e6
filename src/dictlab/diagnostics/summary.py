"""JSON-serialisable pieces of a diagnostics report: distributions, offenders, checks."""

from typing import Self

import torch
from pydantic import BaseModel, Field
from torch import Tensor


class Distribution(BaseModel):
    """Summary of a violation (or any nonnegative statistic) over its population."""

    count: int
    mean: float | None
    q50: float | None
    q90: float | None
    q99: float | None
    max: float | None

    @classmethod
    def of(cls, values: Tensor) -> Self:
        values = values.detach().double().flatten()
        values = values[torch.isfinite(values)]
        if values.numel() == 0:
            return cls(count=0, mean=None, q50=None, q90=None, q99=None, max=None)
        if values.numel() > 1 << 24:  # quantiles of a fixed random subsample (torch.quantile's size limit)
            pick = torch.randperm(values.numel(), generator=torch.Generator().manual_seed(0))[: 1 << 24]
            sample = values[pick]
        else:
            sample = values
        q = torch.quantile(sample, torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64)).tolist()
        return cls(
            count=values.numel(), mean=float(values.mean()), q50=q[0], q90=q[1], q99=q[2], max=float(values.max())
        )


class Offender(BaseModel):
    """One worst case: the atom, point or (j, k) pair it concerns, and its value."""

    where: list[int] = Field(description="Atom id, point id, or [j, k] for a pair.")
    value: float


class Check(BaseModel):
    """One condition or identity: its statement, the violation distribution and whether it holds."""

    name: str
    statement: str
    over: str = Field(description="What the distribution runs over (support entries, atoms, pairs, ...).")
    tolerance: float
    holds: bool
    distribution: Distribution
    worst: list[Offender] = Field(default_factory=list)
    exact: bool = Field(
        default=True, description="Evaluated on its whole population (False: on a random sample, see error_bound)."
    )
    error_bound: str | None = Field(default=None, description="What the sample guarantees when exact is False.")

    @classmethod
    def build(
        cls,
        name: str,
        statement: str,
        over: str,
        violations: Tensor,
        tolerance: float,
        ids: Tensor | None = None,
        n_worst: int = 5,
        error_bound: str | None = None,
    ) -> Self:
        """``violations``: [M] nonnegative relative violations; ``ids``: [M] or [M, 2] what each one concerns;
        ``error_bound`` (when the violations are those of a random sample) what the sample guarantees."""
        violations = violations.detach().double().flatten()
        ids = torch.arange(len(violations)) if ids is None else ids
        order = torch.argsort(violations, descending=True)[:n_worst]
        worst = [Offender(where=[int(i) for i in torch.atleast_1d(ids[o])], value=float(violations[o])) for o in order]
        holds = bool(violations.numel() == 0 or float(violations.max()) <= tolerance)
        return cls(
            name=name,
            statement=statement,
            over=over,
            tolerance=tolerance,
            holds=holds,
            distribution=Distribution.of(violations),
            worst=worst,
            exact=error_bound is None,
            error_bound=error_bound,
        )
