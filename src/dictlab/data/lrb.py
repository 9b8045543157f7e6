"""Linear Representation Bench (Tang et al., arXiv 2512.05534, App. C): sparse codes through known features.

One generated dataset holds the shared codes of every split and the feature matrices; :meth:`LRBDataset.view`
turns it into the inputs/targets and ground truth of an SAE, a transcoder or a crosscoder.
"""

import hashlib
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Self, get_args

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import Tensor

from dictlab.data.feature_matrix import PGDReport, interference_pgd
from dictlab.data.ground_truth import GroundTruth
from dictlab.files.memory import check_allocation

Split = Literal["train", "val", "test"]
ViewKind = Literal["sae", "transcoder", "crosscoder"]
SPLITS: tuple[str, ...] = get_args(Split)
VIEW_KINDS: tuple[str, ...] = get_args(ViewKind)

_CODE_CHUNK_ROWS = 8192  # rows drawn per generator call; fixed so that codes are reproducible


class LRBConfig(BaseModel):
    """Every knob of the bench generator; defaults are the paper's (Table 3) or documented dictlab choices."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    n_features: int = Field(default=1000, ge=2, description="Number of ground-truth features n (paper: 1000).")
    d_in: int = Field(
        default=768, gt=0, description="Input width n_p of W_p, also each crosscoder source's width (paper: 768)."
    )
    d_out: int = Field(
        default=768,
        gt=0,
        description="Transcoder target width n_r of W_r (paper: 768; W_r's construction is unstated, "
        "dictlab uses an independent PGD matrix).",
    )
    n_sources: int = Field(
        default=2,
        ge=1,
        description="Crosscoder sources m: independent PGD matrices sharing the codes (paper silent; 2).",
    )
    sparsity: float = Field(
        default=0.99, gt=0, lt=1, description="S = Pr(feature inactive); features fire iid w.p. 1-S (paper: 0.99)."
    )
    max_interference: float = Field(
        default=0.1, gt=0, lt=1, description="M: PGD stops once max signed off-diagonal <w_i, w_j> <= M (paper: 0.1)."
    )
    pgd_eps: float = Field(
        default=1e-3,
        gt=0,
        description="PGD tolerance margin eps, the loss targets M-eps (paper silent; 1e-3 like the only "
        "public re-implementation).",
    )
    pgd_neg_weight: float = Field(
        default=1e-3,
        ge=0,
        description="PGD weight lambda on positive inner products, favouring negative interference (paper "
        "silent; 1e-3 like the only public re-implementation).",
    )
    pgd_step: float = Field(
        default=0.05,
        gt=0,
        description="PGD step size eta (paper silent; 0.05 like the only public re-implementation, reaches "
        "M=0.1 in ~10 steps).",
    )
    pgd_max_iter: int = Field(
        default=10_000,
        ge=0,
        description="PGD iteration cap before failing with an error (paper silent; 10,000, far above the ~10 "
        "needed at the defaults).",
    )
    c_min: float = Field(
        default=0.0,
        ge=0,
        description="c_min: minimum active magnitude, active value = c_min + Exp(beta) (paper silent; 0 like "
        "the only public re-implementation).",
    )
    beta: float = Field(
        default=1.0,
        gt=0,
        description="beta: MEAN (scale) of the exponential part of active magnitudes (paper silent; 1, where "
        "scale and rate readings agree).",
    )
    n_train: int = Field(default=100_000, ge=1, description="Training samples (paper: N = 100,000).")
    n_val: int = Field(
        default=10_000, ge=0, description="Validation samples: same matrices, own code seed (paper: no split)."
    )
    n_test: int = Field(
        default=10_000,
        ge=0,
        description="Test samples for FVU, L0 and dead fraction: same matrices, own code seed (paper has no "
        "split; 10,000).",
    )
    seed: int = Field(
        default=0,
        ge=0,
        description="Master seed; separate sub-seeds for W_p, W_r, crosscoder sources and each split's codes "
        "are derived from it.",
    )
    n_parents: int = Field(
        default=0,
        ge=0,
        description="Planted hierarchies: parents active iff any child is active (paper Def. 3.2; 0 = off, "
        "as in the paper's bench).",
    )
    children_per_parent: int = Field(
        default=4,
        ge=1,
        description="Children per planted parent, ordinary features disjoint from all others (4 as in the "
        "paper's Example 3.7).",
    )

    @model_validator(mode="after")
    def _hierarchy_fits(self) -> Self:
        needed = self.n_parents * (self.children_per_parent + 1)
        if needed > self.n_features:
            raise ValueError(
                f"n_parents * (children_per_parent + 1) = {needed} features exceed n_features = {self.n_features}"
            )
        return self


def derive_seed(seed: int, stream: str) -> int:
    """Deterministic 63-bit sub-seed for a named random stream (e.g. ``"features_p"``, ``"codes_train"``)."""
    digest = hashlib.sha256(f"dictlab.lrb/{seed}/{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def planted_hierarchy(n_features: int, n_parents: int, children_per_parent: int) -> Tensor:
    """Parent index of every feature, int64 [n_features], −1 for none.

    Layout: features 0..P−1 are the parents; parent p's children are P + p·k … P + (p+1)·k − 1 (k children
    each); the remaining features are free. Features are exchangeable (random matrices), so nothing is lost.
    """
    if n_parents * (children_per_parent + 1) > n_features:
        raise ValueError(f"{n_parents} parents with {children_per_parent} children do not fit in {n_features} features")
    parents = torch.full((n_features,), -1, dtype=torch.int64)
    children = torch.arange(n_parents, n_parents + n_parents * children_per_parent)
    parents[children] = torch.arange(n_parents).repeat_interleave(children_per_parent)
    return parents


def sample_codes(
    n_samples: int,
    n_features: int,
    *,
    sparsity: float,
    c_min: float,
    beta: float,
    parents: Tensor | None = None,
    generator: torch.Generator,
) -> Tensor:
    """Sparse nonnegative codes, float32 [n_samples, n_features] (LRB Eqs. 30–31, plus planted hierarchy).

    Mask ~ Bernoulli(1 − sparsity) iid; then every parent's mask is replaced by "any of its children active"
    (``parents`` as from :func:`planted_hierarchy`, depth one); active entries get c_min + beta·Exp(1)
    (beta is the mean), clamped to be > 0 so that activity equals ``codes > 0``. Rows are drawn in fixed
    chunks, so a longer draw with the same generator state extends a shorter one.
    """
    if not 0.0 < sparsity < 1.0 or c_min < 0 or beta <= 0 or n_samples < 0:
        raise ValueError(
            f"need 0 < sparsity < 1, c_min >= 0, beta > 0, n_samples >= 0; got sparsity={sparsity}, "
            f"c_min={c_min}, beta={beta}, n_samples={n_samples}"
        )
    child_index = parent_of_child = parent_index = None
    if parents is not None:
        if parents.shape != (n_features,) or parents.dtype != torch.int64:
            raise ValueError(f"parents must be int64 [{n_features}], got {parents.dtype} {tuple(parents.shape)}")
        child_index = (parents >= 0).nonzero().squeeze(1)
        parent_of_child = parents[child_index]
        parent_index = parent_of_child.unique()
        if (parents[parent_index] >= 0).any():
            raise ValueError("parents must describe a depth-one hierarchy (a parent cannot have a parent)")

    codes = torch.zeros(n_samples, n_features, dtype=torch.float32)
    smallest_positive = torch.finfo(torch.float32).tiny
    for start in range(0, n_samples, _CODE_CHUNK_ROWS):
        rows = min(_CODE_CHUNK_ROWS, n_samples - start)
        active = torch.rand(rows, n_features, generator=generator) < (1.0 - sparsity)
        if child_index is not None and parent_of_child is not None and child_index.numel() > 0:
            active_children = torch.zeros(rows, n_features).index_add_(
                1, parent_of_child, active[:, child_index].float()
            )
            active[:, parent_index] = active_children[:, parent_index] > 0
        n_active = int(active.sum())
        magnitudes = torch.empty(n_active, dtype=torch.float32).exponential_(1.0, generator=generator)
        magnitudes = (c_min + beta * magnitudes).clamp_min_(smallest_positive)
        chunk = codes[start : start + rows]
        chunk[active] = magnitudes
    return codes


@dataclass(frozen=True, eq=False)
class DataView:
    """One dictionary kind's reading of an LRB dataset: how codes become (input, target) and the ground truth.

    ``input_matrix [n, d_in]`` and ``output_matrix [n, d_out]`` map codes to data; for sae and crosscoder they
    are the same tensor. ``truth`` holds the unit-norm directions the encoder/decoder should recover.
    """

    kind: str
    d_in: int
    d_out: int
    truth: GroundTruth
    input_matrix: Tensor = field(repr=False)
    output_matrix: Tensor = field(repr=False)

    @property
    def n_features(self) -> int:
        return self.input_matrix.shape[0]

    def to(self, device: torch.device | str) -> "DataView":
        """The same view with its data matrices on ``device`` (truth stays where it is)."""
        moved_in = self.input_matrix.to(device)
        moved_out = moved_in if self.output_matrix is self.input_matrix else self.output_matrix.to(device)
        return DataView(self.kind, self.d_in, self.d_out, self.truth, moved_in, moved_out)

    def materialize(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Codes [B, n] → (x_in [B, d_in], x_out [B, d_out]); one matmul for sae/crosscoder (x_in is x_out).

        The matrices follow ``codes``' device and dtype (call :meth:`to` once to avoid a per-batch copy).
        """
        if codes.ndim != 2 or codes.shape[1] != self.n_features:
            raise ValueError(f"codes must be [batch, {self.n_features}], got shape {tuple(codes.shape)}")
        matrix_in = self.input_matrix.to(device=codes.device, dtype=codes.dtype)
        x_in = codes @ matrix_in
        if self.output_matrix is self.input_matrix:
            return x_in, x_in
        return x_in, codes @ self.output_matrix.to(device=codes.device, dtype=codes.dtype)


@dataclass(frozen=True, eq=False)
class LRBDataset:
    """A generated bench: row-wise unit feature matrices, their PGD reports, and dense codes per split.

    features_p [n, d_in]; features_r [n, d_out] (transcoder targets); source_features: n_sources × [n, d_in]
    with source 0 = features_p; parents int64 [n] or None; codes: split → float32 [N_split, n].
    """

    config: LRBConfig
    features_p: Tensor = field(repr=False)
    features_r: Tensor = field(repr=False)
    source_features: list[Tensor] = field(repr=False)
    interference: dict[str, PGDReport]
    seeds: dict[str, int]
    parents: Tensor | None = field(repr=False)
    split_codes: dict[str, Tensor] = field(repr=False)

    def codes(self, split: str) -> Tensor:
        """Dense codes float32 [N_split, n_features] of ``split`` ∈ {train, val, test}."""
        if split not in self.split_codes:
            raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
        return self.split_codes[split]

    def view(self, kind: str) -> DataView:
        """The sae / transcoder / crosscoder reading of this dataset (see :class:`DataView`)."""
        parents = self.parents
        meta = {**self.meta(), "view": kind}
        if kind == "sae":
            truth = GroundTruth(self.features_p, self.features_p, parents, meta)
            return DataView(kind, self.config.d_in, self.config.d_in, truth, self.features_p, self.features_p)
        if kind == "transcoder":
            truth = GroundTruth(self.features_p, self.features_r, parents, meta)
            d_in, d_out = self.config.d_in, self.config.d_out
            return DataView(kind, d_in, d_out, truth, self.features_p, self.features_r)
        if kind == "crosscoder":
            stacked = torch.cat(self.source_features, dim=1)
            directions = stacked / math.sqrt(len(self.source_features))
            truth = GroundTruth(directions, directions, parents, meta)
            width = stacked.shape[1]
            return DataView(kind, width, width, truth, stacked, stacked)
        raise ValueError(f"unknown view kind {kind!r}; valid kinds: {', '.join(VIEW_KINDS)}")

    def meta(self) -> dict[str, Any]:
        """JSON-safe record of the generator: config, derived seeds, achieved interference per matrix."""
        return {
            "generator": "dictlab.lrb",
            "torch_version": torch.__version__,
            "config": self.config.model_dump(mode="json"),
            "seeds": dict(self.seeds),
            "interference": {name: asdict(report) for name, report in self.interference.items()},
            "hierarchy_layout": "parents 0..P-1, children of p: P+p*k .. P+(p+1)*k-1",
        }


def generate_lrb(config: LRBConfig) -> LRBDataset:
    """Generate the feature matrices (interference PGD) and the codes of every split, deterministically."""
    rows = config.n_train + config.n_val + config.n_test
    check_allocation(4 * rows * config.n_features, f"LRB codes of {rows:,} samples × {config.n_features:,} features")
    seeds: dict[str, int] = {}

    def stream(name: str) -> torch.Generator:
        seeds[name] = derive_seed(config.seed, name)
        return torch.Generator().manual_seed(seeds[name])

    def pgd(name: str, dim: int) -> tuple[Tensor, PGDReport]:
        return interference_pgd(
            config.n_features,
            dim,
            config.max_interference,
            eps=config.pgd_eps,
            neg_weight=config.pgd_neg_weight,
            step=config.pgd_step,
            max_iter=config.pgd_max_iter,
            generator=stream(name),
        )

    interference: dict[str, PGDReport] = {}
    features_p, interference["features_p"] = pgd("features_p", config.d_in)
    features_r, interference["features_r"] = pgd("features_r", config.d_out)
    source_features = [features_p]
    for source in range(1, config.n_sources):
        matrix, interference[f"source_{source}"] = pgd(f"source_{source}", config.d_in)
        source_features.append(matrix)

    parents = (
        planted_hierarchy(config.n_features, config.n_parents, config.children_per_parent)
        if config.n_parents > 0
        else None
    )
    sizes = {"train": config.n_train, "val": config.n_val, "test": config.n_test}
    split_codes = {
        split: sample_codes(
            sizes[split],
            config.n_features,
            sparsity=config.sparsity,
            c_min=config.c_min,
            beta=config.beta,
            parents=parents,
            generator=stream(f"codes_{split}"),
        )
        for split in SPLITS
    }
    return LRBDataset(config, features_p, features_r, source_features, interference, seeds, parents, split_codes)
