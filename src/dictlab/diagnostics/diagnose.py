"""One entry point: everything the optimality theory says about a dictionary on data, as one typed report."""

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import Tensor

from dictlab.diagnostics.codes import nonnegative_lasso
from dictlab.diagnostics.conditions import ConditionArrays, check_conditions
from dictlab.diagnostics.dense import DenseSummary, dense_summary
from dictlab.diagnostics.hierarchy import TILT_COSINE, HierarchySummary, hierarchy_pairs
from dictlab.diagnostics.pairwise import HullLP, PairwiseResult, PairwiseSummary, hull_lp, pairwise_hull_test
from dictlab.diagnostics.problem import DiagnosticsInputError, L1Dictionary, check_data, check_lambda
from dictlab.diagnostics.residuals import ResidualSummary, residual_summary
from dictlab.diagnostics.sae_mapping import (
    L1_ACTIVATIONS,
    NOT_L1_NOTE,
    dictionary_from_model,
    effective_lambda,
    encoder_codes,
    lambda_from_coefficient,
)
from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.diagnostics.summary import Check
from dictlab.diagnostics.wide_limit import WideLimitSummary, wide_limit
from dictlab.models import SparseDictionary
from dictlab.stopwatch import Stopwatch

CodesMode = Literal["auto", "exact", "encoder"]
EXACT_AUTO_BUDGET = 2e9
"""'auto' recomputes exact codes when N·K·D is at most this (a few seconds per FISTA sweep here)."""


class DiagnoseOptions(BaseModel):
    """How to diagnose a dictionary."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    lam: float | None = Field(
        default=None,
        gt=0,
        description="λ of (P_K). Default: ReLU training coefficient / 2, else estimated from the codes.",
    )
    codes: CodesMode = Field(
        default="auto",
        description="exact: recompute the optimal codes for the decoder; encoder: the SAE's own (amortised) codes; "
        "auto: exact when N·K·D ≤ 2e9, else encoder.",
    )
    max_points: int = Field(
        default=100_000,
        gt=0,
        description="Use at most this many data rows (the first ones) when loading and encoding data.",
    )
    tolerance: float = Field(default=1e-5, gt=0, description="Relative tolerance for a condition to count as holding.")
    max_dense_points: int = Field(
        default=8192,
        gt=0,
        description="Per-point checks a random sample can bound (C1 off the support, the shrinkage distributions) "
        "run on at most this many points; the report states each sample's error bound.",
    )
    lp_pairs: int = Field(default=8, ge=0, description="Run the exact LP hull test on this many of the worst pairs.")
    lp_neighbours: int = Field(
        default=8, ge=1, description="Neighbours (largest |cosine|) per atom in the multi-atom LP."
    )
    pairs: tuple[tuple[int, int], ...] = Field(
        default=(),
        description="Extra atom pairs j:k to test with the LP, E3/E4 and hierarchy statistics (e.g. 3:7,5:9).",
    )
    n_worst: int = Field(default=20, gt=0, description="Worst offenders listed per check.")
    seed: int = Field(default=0, description="Seed for subsampling.")

    @field_validator("pairs", mode="before")
    @classmethod
    def _parse_pairs(cls, value: Any) -> Any:
        """Accept "j:k" strings (the CLI form) as well as (j, k) pairs."""
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        out = []
        for item in value:
            if isinstance(item, str):
                parts = item.split(":")
                if len(parts) != 2:
                    raise ValueError(f"pair {item!r} is not of the form j:k")
                item = (int(parts[0]), int(parts[1]))
            if item[0] == item[1]:
                raise ValueError(f"pair {item} names one atom twice")
            out.append(tuple(item))
        return tuple(out)


class ProblemInfo(BaseModel):
    lam: float
    lam_source: str
    effective_lam: float | None = Field(description="median w_kᵀr_n over active entries (= λ at an optimum).")
    bias: bool
    codes: Literal["exact", "encoder", "given"]
    n_points: int
    dim: int
    n_atoms: int
    n_live_atoms: int
    mean_l0: float
    lasso_max_relative_gap: float | None = None


class ObjectiveInfo(BaseModel):
    reconstruction: float = Field(description="½‖X − AW − b‖².")
    l1: float = Field(description="λΣA.")
    total: float


class DiagnosticsReport(BaseModel):
    """Everything ``dictlab diagnose`` writes to diagnostics.json."""

    source: dict[str, Any]
    problem: ProblemInfo
    notes: list[str]
    objective: ObjectiveInfo
    conditions: list[Check]
    conditions_hold: bool
    pairwise: PairwiseSummary
    lp: list[HullLP]
    hierarchy: HierarchySummary
    dense: DenseSummary
    residuals: ResidualSummary
    wide_limit: WideLimitSummary
    seconds: dict[str, float]


@dataclass
class Diagnostics:
    """The report plus the arrays behind it (for figures and further analysis)."""

    report: DiagnosticsReport
    X: Tensor
    dictionary: L1Dictionary
    codes: SparseCodes
    conditions: ConditionArrays
    pairwise: PairwiseResult
    arrays: dict[str, Tensor] = field(default_factory=dict)


def diagnose_codes(
    X: Tensor,
    dictionary: L1Dictionary,
    codes: SparseCodes,
    lam: float,
    options: DiagnoseOptions | None = None,
    *,
    lam_source: str = "given",
    codes_mode: Literal["exact", "encoder", "given"] = "given",
    notes: list[str] | None = None,
    source: dict[str, Any] | None = None,
    lasso_gap: float | None = None,
    effective_lam: float | None = None,
) -> Diagnostics:
    """Diagnose a point (W, A, b) of (P_K) on data X [N, D] at λ.

    ``effective_lam`` defaults to the estimate from ``codes``; pass the one from a model's own encoder codes when
    ``codes`` are exact (the estimate from exact codes is λ itself).
    """
    options = options or DiagnoseOptions()
    lam = check_lambda(lam)
    X = check_data(X, dictionary.dim).double()
    dictionary = dictionary.to(torch.float64)
    codes = codes.to(torch.float64)
    if codes.n_points != len(X) or codes.n_atoms != dictionary.n_atoms:
        raise DiagnosticsInputError(
            f"codes are [{codes.n_points}, {codes.n_atoms}] but data has {len(X)} rows and the dictionary "
            f"{dictionary.n_atoms} atoms"
        )
    requested = torch.tensor(options.pairs, dtype=torch.long).reshape(-1, 2)
    if len(requested) and (requested.min() < 0 or requested.max() >= dictionary.n_atoms):
        raise DiagnosticsInputError(f"requested pairs {options.pairs} name atoms outside 0..{dictionary.n_atoms - 1}")
    generator = torch.Generator().manual_seed(options.seed)
    clock = Stopwatch()
    pairwise = pairwise_hull_test(
        codes, dictionary.atoms, bias=dictionary.bias is not None, n_worst=options.n_worst, close_cosine=TILT_COSINE
    )
    clock.lap("pairwise")
    worst = torch.tensor([[v.j, v.k] for v in pairwise.summary.worst], dtype=torch.long).reshape(-1, 2)
    flagged = torch.cat([requested, pairwise.failing_pairs[:500], worst])
    both_ways = torch.cat([flagged, flagged.flip(1)]).unique(dim=0)
    checks, arrays = check_conditions(
        X,
        dictionary,
        codes,
        lam,
        tolerance=options.tolerance,
        max_dense_points=options.max_dense_points,
        pairs=both_ways,
        generator=generator,
        n_worst=options.n_worst,
    )
    clock.lap("conditions")
    R = arrays.residuals
    lp = _lp_checks(codes, dictionary, torch.cat([requested, worst]), options, generator)
    clock.lap("lp")
    hierarchy = hierarchy_pairs(codes, dictionary.atoms, R, lam, flagged, close_pairs=pairwise.close_pairs)
    clock.lap("hierarchy")
    dense = dense_summary(
        X, codes, dictionary.atoms, dictionary.bias, pairwise.antipodal_pairs, pairwise.antipodal_cosines
    )
    clock.lap("dense")
    residuals, residual_arrays = residual_summary(
        R, codes, dictionary.atoms, lam, arrays.g_active, max_points=options.max_dense_points, generator=generator
    )
    clock.lap("residuals")
    reconstruction = float(0.5 * R.pow(2).sum())
    l1 = float(lam * codes.values.sum())
    limit = wide_limit(X, lam, bias=dictionary.bias is not None)
    clock.lap("wide_limit")
    eff = effective_lam
    if eff is None and codes.nnz:
        eff = float(lam * arrays.g_active.median())  # median w_kᵀr_n over active entries
    report = DiagnosticsReport(
        source=source or {},
        problem=ProblemInfo(
            lam=lam,
            lam_source=lam_source,
            effective_lam=eff,
            bias=dictionary.bias is not None,
            codes=codes_mode,
            n_points=len(X),
            dim=dictionary.dim,
            n_atoms=dictionary.n_atoms,
            n_live_atoms=int((codes.mass > 0).sum()),
            mean_l0=float(codes.nnz / len(X)),
            lasso_max_relative_gap=lasso_gap,
        ),
        notes=notes or [],
        objective=ObjectiveInfo(reconstruction=reconstruction, l1=l1, total=reconstruction + l1),
        conditions=checks,
        conditions_hold=all(c.holds for c in checks),
        pairwise=pairwise.summary,
        lp=lp,
        hierarchy=hierarchy,
        dense=dense,
        residuals=residuals,
        wide_limit=limit.summary(reconstruction + l1),
        seconds=clock.seconds,
    )
    return Diagnostics(report, X, dictionary, codes, arrays, pairwise, residual_arrays)


def _lp_checks(
    codes: SparseCodes, dictionary: L1Dictionary, pairs: Tensor, options: DiagnoseOptions, generator: torch.Generator
) -> list[HullLP]:
    """Exact LP form for the requested pairs and the worst ones: each direction alone, then atom j's neighbourhood."""
    out: list[HullLP] = []
    bias = dictionary.bias is not None
    W = dictionary.atoms
    n_requested = len(options.pairs)
    chosen = pairs[: n_requested + options.lp_pairs].tolist()
    for j, k in chosen:
        if codes.mass[j] <= 0 or codes.mass[k] <= 0:
            continue
        out.append(hull_lp(codes, W, j, [k], bias=bias, generator=generator))
        out.append(hull_lp(codes, W, k, [j], bias=bias, generator=generator))
    for j in sorted({j for j, _ in chosen}):
        cos = (W @ W[j]).abs()
        cos[j] = -1
        cos[codes.mass <= 0] = -1
        neighbours = torch.argsort(cos, descending=True)[: options.lp_neighbours]
        neighbours = [int(k) for k in neighbours if cos[k] >= 0]
        if neighbours and codes.mass[j] > 0:
            out.append(hull_lp(codes, W, j, neighbours, bias=bias, generator=generator))
    return out


def diagnose_model(
    model: SparseDictionary,
    X_in: Tensor,
    X_out: Tensor | None = None,
    options: DiagnoseOptions | None = None,
    *,
    training_coefficient: float | None = None,
    source: dict[str, Any] | None = None,
    progress: bool = False,
) -> Diagnostics:
    """Map a trained dictionary onto (P_K) and diagnose it on X_in [N, d_in] (targets X_out [N, d_out])."""
    options = options or DiagnoseOptions()
    cfg = model.cfg
    X_in = check_data(X_in, cfg.d_in, "input activations")[: options.max_points]
    X_out = X_in if X_out is None else check_data(X_out, cfg.d_out, "target activations")[: options.max_points]
    if len(X_out) != len(X_in):
        raise DiagnosticsInputError(f"inputs have {len(X_in)} rows but targets {len(X_out)}")
    dictionary = dictionary_from_model(model)
    notes: list[str] = []
    is_l1 = cfg.activation in L1_ACTIVATIONS
    if not is_l1:
        if options.lam is None:
            raise DiagnosticsInputError(
                NOT_L1_NOTE.format(activation=cfg.activation) + " Pass --lam to choose the λ to diagnose at."
            )
        notes.append(NOT_L1_NOTE.format(activation=cfg.activation))
    if cfg.kind == "transcoder":
        notes.append("Transcoder: (P_K) is posed on the targets; encoder codes come from the inputs.")
    amortised = encoder_codes(model, X_in)
    try:
        estimated = effective_lambda(X_out, dictionary, amortised)
    except DiagnosticsInputError:
        estimated = None
    if options.lam is not None:
        lam, lam_source = options.lam, "given"
    elif training_coefficient is not None:
        lam = lambda_from_coefficient(training_coefficient)
        lam_source = f"training coefficient {training_coefficient:g} (raw-data units) / 2"
    else:
        lam = effective_lambda(X_out, dictionary, amortised)  # raises the explanatory error when impossible
        lam_source = "estimated: median w_kᵀr_n over the encoder's active codes"
        notes.append("λ was estimated from the codes because the training coefficient is unknown.")
    mode = options.codes
    size = len(X_out) * cfg.d_sae * cfg.d_out
    if mode == "auto":
        mode = "exact" if size <= EXACT_AUTO_BUDGET else "encoder"
        if mode == "encoder":
            notes.append(f"Codes: the encoder's, because N·K·D = {size:.2g} exceeds the exact-code budget.")
    lasso_gap = None
    if mode == "exact":
        solved = nonnegative_lasso(X_out.double(), dictionary, lam, init=amortised.to_dense() if size <= 1e9 else None)
        codes = SparseCodes.from_dense(solved.codes)
        lasso_gap = solved.max_relative_gap
    else:
        codes = amortised
        if is_l1:
            notes.append(
                "Encoder codes are an amortised approximation of the optimal codes: violations mix amortisation "
                "error with non-stationarity. Use --codes exact to test the decoder alone."
            )
    return diagnose_codes(
        X_out,
        dictionary,
        codes,
        lam,
        options,
        lam_source=lam_source,
        codes_mode=mode,
        notes=notes,
        source={"activation": cfg.activation, "kind": cfg.kind, "d_in": cfg.d_in, "d_sae": cfg.d_sae, **(source or {})},
        lasso_gap=lasso_gap,
        effective_lam=estimated,
    )
