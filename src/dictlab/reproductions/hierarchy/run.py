"""``dictlab reproduce hierarchy``: planted parent/child features (docs/optimality.md §5).

A child that fires only with its parent cannot sit beside it as a distinct atom at a stationary point of (P_K):
the ground-truth (GT) dictionary with its exact codes fails the pairwise hull test and C2, while the joint solver
tilts the child atom towards the parent and keeps the parent active on only part of the child's points (partial
absorption). A ReLU SAE trained with dictlab at coefficient 2λ is measured the same way with exact codes.
"""

import time
from pathlib import Path

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.diagnostics.codes import nonnegative_lasso
from dictlab.diagnostics.conditions import check_conditions
from dictlab.diagnostics.pairwise import PairVerdict, pairwise_hull_test
from dictlab.diagnostics.problem import L1Dictionary, objective
from dictlab.diagnostics.sae_mapping import dictionary_from_model
from dictlab.diagnostics.solver import SolverResult, learn_dictionary, random_atoms
from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.diagnostics.summary import Check
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.claims import Claim, Echo
from dictlab.reproductions.hierarchy.report import (
    hierarchy_claims,
    hierarchy_markdown,
    plot_cosines,
    plot_parent_child_hulls,
)
from dictlab.reproductions.synthetic import FAMILIES, HierarchyData, Planted, plant
from dictlab.stopwatch import Stopwatch
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer


class HierarchyConfig(ReproductionConfig):
    """One planted parent/child family, the ReLU SAE comparison and the several-families version."""

    lam: float = Field(default=0.05, gt=0, description="λ of (P_K); the SAE trains at coefficient 2λ.")
    tolerance: float = Field(default=1e-5, gt=0, description="Relative violation below which C1–C3 count as holding.")
    match_cosine: float = Field(default=0.99, gt=0, le=1, description="An atom 'is' a GT feature above this cosine.")
    data: HierarchyData = Field(default=HierarchyData(), description="The single-family data.")
    families: HierarchyData | None = Field(default=FAMILIES, description="Several-families data (None: skip).")
    random_inits: int = Field(default=3, ge=0, description="Random initialisations of the solver per bias setting.")
    sae_widths: tuple[int, ...] = Field(default=(3, 8), description="d_sae of the ReLU SAEs.")
    sae_seeds: int = Field(default=2, ge=0, description="SAE initialisations per width and bias setting (0: no SAE).")
    sae_steps: int = Field(default=3000, gt=0, description="Adam steps per SAE.")
    sae_batch_size: int = Field(default=256, gt=0, description="SAE batch size.")
    sae_lr: float = Field(default=3e-3, gt=0, description="SAE learning rate.")
    tol: float = Field(default=1e-10, gt=0, description="Solver stopping tolerance on C2/C3.")
    max_iter: int = Field(default=5000, gt=0, description="Solver sweep limit.")

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
        description="Some atom matches the child GT and another atom the parent GT (cosine > match_cosine)."
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
    conditions_hold: bool = Field(description="C1–C3 within the configured tolerance.")
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


def conditions_hold(checks: list[Check], tolerance: float) -> bool:
    """C1 (both halves), C2 and C3 (when present) within ``tolerance``."""
    values = [
        c.distribution.max
        for c in checks
        if c.name in ("C1 active", "C1 inactive", "C2", "C3") and c.distribution.max is not None
    ]
    return bool(values) and max(values) <= tolerance


def _pair_stats(
    X: Tensor,
    dictionary: L1Dictionary,
    A: Tensor,
    lam: float,
    planted: Planted,
    verdicts: list[PairVerdict],
    match: float,
) -> list[PairTilt]:
    W = dictionary.atoms
    cos = W @ planted.atoms.T
    R = dictionary.residuals(X, A)
    G = R @ W.T / lam
    out = []
    for parent, children in planted.families:
        j = int(cos[:, parent].argmax())
        for child in children:
            masked = cos[:, child].clone()
            masked[j] = -torch.inf
            k = int(masked.argmax())
            c = float(W[j] @ W[k])
            child_on = A[:, k] > 0
            true_child = planted.active[:, child]
            mu = (1 - G[:, j]) * (A[:, j] == 0)
            scale = len(X) if dictionary.bias is not None else 1
            copies_child, copies_parent = cos[:, child] > match, cos[:, parent] > match
            distinct = any(
                bool(copies_child[a] and copies_parent[b]) for a in range(len(W)) for b in range(len(W)) if a != b
            )
            verdict = next((v for v in verdicts if {v.j, v.k} == {j, k}), None)
            out.append(
                PairTilt(
                    parent=planted.names[parent],
                    child=planted.names[child],
                    parent_atom=j,
                    child_atom=k,
                    parent_atom_cos_parent=float(cos[j, parent]),
                    child_atom_cos_parent=float(cos[k, parent]),
                    child_atom_cos_child=float(cos[k, child]),
                    atom_cosine=c,
                    parent_on_child_points=float((A[child_on, j] > 0).double().mean()) if child_on.any() else None,
                    parent_on_true_child_points=float((A[true_child, j] > 0).double().mean()),
                    distinct_gt_pair=distinct,
                    e3_lhs=float((1 - c) * A[:, k].sum() / scale),
                    e3_rhs=float((mu * A[:, k]).sum() / scale),
                    verdict=verdict,
                )
            )
    return out


def assess(
    label: str,
    X: Tensor,
    dictionary: L1Dictionary,
    config: HierarchyConfig,
    planted: Planted,
    solver: SolverInfo | None = None,
) -> tuple[Assessment, SparseCodes]:
    """Exact codes, C1–C3/E1–E4, the pairwise test and the GT-pair statistics of ``dictionary`` at λ = config.lam."""
    lam = config.lam
    A = nonnegative_lasso(X, dictionary, lam).codes
    codes = SparseCodes.from_dense(A)
    checks, arrays = check_conditions(X, dictionary, codes, lam, tolerance=config.tolerance)
    K = dictionary.n_atoms
    bias = dictionary.bias is not None
    pairwise = pairwise_hull_test(codes, dictionary.atoms, bias=bias, n_worst=max(1, K * (K - 1) // 2))
    summary = pairwise.summary
    G = arrays.residuals @ dictionary.atoms.T / lam
    live = A.sum(dim=0) > 0
    p_sums = ((1 - G) * (A == 0)).sum(dim=0)[live] / len(X)
    assessment = Assessment(
        label=label,
        bias=bias,
        n_atoms=K,
        n_live_atoms=int(live.sum()),
        loss=objective(X, dictionary, A, lam),
        violations={c.name: c.distribution.max for c in checks},
        conditions_hold=conditions_hold(checks, config.tolerance),
        pairwise_form=summary.form,
        n_pairs=summary.n_pairs,
        n_failing_pairs=summary.n_failing_pairs,
        n_nested_pairs=summary.n_nested_pairs,
        pairwise_passes=summary.n_failing_pairs == 0,
        p_sums=p_sums.tolist(),
        cosines_to_gt=(dictionary.atoms @ planted.atoms.T).tolist(),
        pairs=_pair_stats(X, dictionary, A, lam, planted, summary.worst, config.match_cosine),
        solver=solver,
    )
    return assessment, codes


def solve(
    label: str, X: Tensor, lam: float, init: Tensor, bias: bool, config: HierarchyConfig, planted: Planted
) -> tuple[Assessment, SparseCodes]:
    started = time.perf_counter()
    result: SolverResult = learn_dictionary(X, lam, init, bias=bias, tol=config.tol, max_iter=config.max_iter)
    info = SolverInfo(
        init=label,
        converged=result.converged,
        iterations=result.iterations,
        stationarity=result.stationarity,
        seconds=round(time.perf_counter() - started, 2),
    )
    return assess(label, X, result.dictionary, config, planted, info)


def train_relu_sae(
    X: Tensor, width: int, bias: bool, lam: float, seed: int, config: HierarchyConfig
) -> tuple[SparseDictionary, float, float]:
    """A dictlab ReLU SAE at coefficient 2λ (unit decoder rows); returns (model, last loss, seconds)."""
    cfg = DictionaryConfig(kind="sae", d_in=X.shape[1], d_out=X.shape[1], d_sae=width, activation="relu", use_bias=bias)
    model = SparseDictionary(cfg, torch.Generator().manual_seed(seed))
    recipe = RecipeConfig(lr=config.sae_lr, sparsity_coefficient=2 * lam, dead_window_samples=len(X))
    train = TrainConfig(
        batch_size=config.sae_batch_size, steps=config.sae_steps, seed=seed, checkpoint_every=0, progress=False
    )
    trainer = Trainer([Member("relu", model, recipe)], ShuffledBatches(X.float(), config.sae_batch_size, seed), train)
    summary = trainer.fit()[0]
    return model, float(summary.last["loss"]), summary.train_seconds


def run_hierarchy(config: HierarchyConfig, out: Path, echo: Echo = print) -> HierarchyResults:
    """Run every part, write ``results.json``, ``results.md`` and ``figures/`` under ``out``."""
    clock = Stopwatch()
    lam = config.lam
    generator = torch.Generator().manual_seed(config.seed)
    planted = plant(config.data, generator)
    X, n_gt = planted.X, len(planted.atoms)
    codes_of: dict[str, SparseCodes] = {}

    gt = []
    for label, bias in (("GT, no bias", None), ("GT, b = 0", torch.zeros(X.shape[1], dtype=X.dtype))):
        assessment, codes_of[label] = assess(label, X, L1Dictionary(planted.atoms, bias), config, planted)
        gt.append(assessment)
    clock.lap("gt")
    solver = []
    for label, init, bias in [
        ("solver, GT init, no bias", planted.atoms, False),
        ("solver, GT init, bias", planted.atoms, True),
        *[
            (f"solver, random init {i}, {'bias' if b else 'no bias'}", random_atoms(n_gt, X.shape[1], generator), b)
            for b in (False, True)
            for i in range(config.random_inits)
        ],
    ]:
        assessment, codes_of[label] = solve(label, X, lam, init, bias, config, planted)
        solver.append(assessment)
    clock.lap("solver")
    echo(f"hierarchy: GT and {len(solver)} solver runs done in {clock.total:.1f}s")
    sae = []
    for width in config.sae_widths:
        for bias in (False, True):
            for seed in range(config.sae_seeds):
                sae_seed = config.seed * 1000 + seed
                model, loss, seconds = train_relu_sae(X, width, bias, lam, sae_seed, config)
                with torch.no_grad():
                    l0 = float((model.encode(X.float()) > 0).sum(dim=1).double().mean())
                label = f"SAE d_sae={width}, {'bias' if bias else 'no bias'}, seed {sae_seed}"
                assessment, codes_of[label] = assess(label, X, dictionary_from_model(model), config, planted)
                run = SaeRun(
                    width=width,
                    bias=bias,
                    seed=sae_seed,
                    steps=config.sae_steps,
                    train_loss=loss,
                    train_seconds=round(seconds, 2),
                    encoder_l0=l0,
                    assessment=assessment,
                )
                sae.append(run)
    clock.lap("sae")
    echo(f"hierarchy: {len(sae)} ReLU SAEs trained and diagnosed ({clock.seconds['sae']:.1f}s)")
    families = None
    if config.families is not None:
        fam = plant(config.families, generator)
        fam_gt, _ = assess("GT, no bias", fam.X, L1Dictionary(fam.atoms, None), config, fam)
        fam_solver = [
            solve(label, fam.X, lam, fam.atoms, bias, config, fam)[0]
            for label, bias in (("solver, GT init, no bias", False), ("solver, GT init, bias", True))
        ]
        families = FamiliesResults(data=config.families, gt=fam_gt, solver=fam_solver)
        clock.lap("families")
    results = HierarchyResults(
        config=config, gt=gt, solver=solver, sae=sae, families=families, claims=[], seconds=clock.seconds
    )
    results.claims = hierarchy_claims(results)
    figures = out / "figures"
    plot_parent_child_hulls(results, codes_of, figures / "pairwise_parent_child.png")
    plot_cosines(results, planted.names, figures / "cosines_to_gt.png")
    finish("hierarchy", out, results, hierarchy_markdown, clock, echo)
    return results


__all__ = ["HierarchyConfig", "HierarchyData", "HierarchyResults", "run_hierarchy"]
