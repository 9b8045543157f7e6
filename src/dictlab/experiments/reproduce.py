"""``dictlab reproduce NAME``: a registry of self-contained numerical experiments, each writing
``results.json``, ``results.md`` and ``figures/`` to its output folder.

Add an experiment by registering its config class (with a ``seed`` field and a ``quick(seed)`` constructor for
reduced sizes) and its run function ``(config, out, echo) -> pydantic result`` in ``REPRODUCTIONS``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dictlab.experiments import ablations, table1, theory
from dictlab.experiments.optimality import dense_antipodal, hierarchy, wide_limit
from dictlab.experiments.optimality.common import Echo, single_thread
from dictlab.experiments.real import anchoring, resampling


@dataclass(frozen=True)
class Reproduction:
    config: Any
    """Config class: ``config(seed=s)`` is the full run, ``config.quick(s)`` the reduced one."""
    run: Callable[[Any, Path, Echo], BaseModel]
    description: str
    single_threaded: bool = True
    """Tiny problems run fastest on one thread; model forwards and SAE training want all cores."""


REPRODUCTIONS: dict[str, Reproduction] = {
    "hierarchy": Reproduction(
        hierarchy.HierarchyConfig,
        hierarchy.run_hierarchy,
        "planted parent/child features: GT flagged by the hull test, the solver tilts the child (ref. §10 Exp 1–2)",
    ),
    "wide-limit": Reproduction(
        wide_limit.WideLimitConfig,
        wide_limit.run_wide_limit,
        "width sweep of (P_K) against the convex bound P_∞: gap, L0, ray alignment (ref. §10 Exp 4)",
    ),
    "dense-antipodal": Reproduction(
        dense_antipodal.DenseAntipodalConfig,
        dense_antipodal.run_dense_antipodal,
        "dense signed direction → antipodal pair split at the median (ref. §10 Exp 3)",
    ),
    "theory": Reproduction(
        theory.TheoryConfig,
        theory.run_theory,
        "Tang et al. §3 constructions checked: Thm 3.1 surrogate bound, 3.3 recovering minimiser, 3.4 zero loss "
        "without recovery, Ex. 3.5, 3.6 spurious partial minima, 3.8 absorption",
    ),
    "table1": Reproduction(
        table1.Table1Config,
        table1.run_table1,
        "the bench's Table 1 (paper preset on a GPU, default preset on a CPU) with its claims checked",
        single_threaded=False,
    ),
    "ablations": Reproduction(
        ablations.AblationsConfig,
        ablations.run_ablations,
        "Tables 4–7 as bench sweeps (superposition ratio, interference M, 1 − S, TopK k) beside the paper's numbers",
        single_threaded=False,
    ),
    "resampling": Reproduction(
        resampling.ResamplingConfig,
        resampling.run_resampling,
        "ReLU SAEs on SmolLM2 activations with and without dead-latent resampling: loss and dead fraction (Fig. 7); "
        "needs the lm extra",
        single_threaded=False,
    ),
    "real-anchoring": Reproduction(
        anchoring.RealAnchoringConfig,
        anchoring.run_real_anchoring,
        "class-mean anchors on MiniLM sentence embeddings of WordNet glosses, 26 lexnames (Tang et al. Table 2); "
        "needs the lm extra",
        single_threaded=False,
    ),
}


class ReproduceRequest(BaseModel):
    """Options shared by every reproduction (the CLI options of ``dictlab reproduce``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out: Path | None = Field(None, description="Output folder. Default: runs/reproduce/NAME.")
    seed: int = Field(0, description="Seed of the data, initialisations and training.")
    quick: bool = Field(False, description="Reduced sizes for smoke tests (numbers not comparable with ref. §10).")
    preset: str | None = Field(None, description="Bench preset of the bench-based reproductions (ablations, table1).")


def reproduction_help() -> str:
    return "\n".join(f"{name}: {entry.description}" for name, entry in REPRODUCTIONS.items())


def run_reproduction(name: str, request: ReproduceRequest, echo: Echo = print) -> BaseModel:
    """Run the experiment ``name`` into ``request.out`` (default ``runs/reproduce/<name>``)."""
    if name not in REPRODUCTIONS:
        raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(REPRODUCTIONS)}")
    out = request.out if request.out is not None else Path("runs") / "reproduce" / name
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    entry = REPRODUCTIONS[name]
    config = entry.config.quick(request.seed) if request.quick else entry.config(seed=request.seed)
    if request.preset is not None:
        if "preset" not in entry.config.model_fields:
            raise ValueError(f"--preset applies to the bench-based reproductions, not to {name!r}")
        config = config.model_copy(update={"preset": request.preset})
    if not entry.single_threaded:
        return entry.run(config, out, echo)
    with single_thread():  # these problems are tiny: extra threads only add overhead
        return entry.run(config, out, echo)
