"""``dictlab reproduce absorption``: on the synthetic bench with planted hierarchies, where the truth is known,
does the label-free hierarchy diagnosis find the absorption that the label-based metric finds?

The bench (Tang et al., arXiv 2512.05534 §3; a parent is active iff one of its children is) is generated with
planted parents; TopK and ReLU SAEs are trained on it. With the ground truth (GT) each SAE latent is matched to a
GT feature by decoder cosine, so for every planted (parent, child) edge the *measured* absorption is known: the
share of the child's points where the parent's latent is silent while the child's latent fires, counted as
absorption when the child's atom also carries the parent direction (arXiv 2409.14507 §3). Three detectors
are scored against it, at the level of latent pairs:

* **label-based**: SAEBench's absorption criterion (Chanin et al., arXiv 2409.14507 §3) with a probe for "which
  parent is active", trained on the points where exactly one parent is (``dictlab.evals.absorption``);
* **nested** (label-free): ``dictlab diagnose``'s hierarchy flags — nested pairs of the pairwise hull test and
  partly nested candidates that fail it (arXiv 2606.02385 §4–5);
* **tilted** (label-free): pairs in the absorbed configuration — child atom tilted towards the parent's, the two
  co-firing above chance, the parent silent on part of the child's support
  (``dictlab.diagnostics.hierarchy.tilted_pairs``).

The GT dictionary with its exact codes is scored too: its planted pairs are nested, and nothing is absorbed.
"""

from pathlib import Path

import torch
from pydantic import BaseModel, Field
from torch import Tensor

from dictlab.data import LRBConfig, generate_lrb
from dictlab.diagnostics.diagnose import DiagnoseOptions, diagnose_codes, diagnose_model
from dictlab.diagnostics.hierarchy import tilted_pairs
from dictlab.diagnostics.problem import L1Dictionary
from dictlab.diagnostics.sparse_codes import SparseCodes
from dictlab.evals.absorption.words import AbsorptionOptions, class_absorption
from dictlab.features.diagnosis import nested_pairs
from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.reproductions.absorption.classes import planted_class_data
from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.claims import Claim, Echo
from dictlab.stopwatch import Stopwatch
from dictlab.training import Member, RecipeConfig, ShuffledBatches, TrainConfig, Trainer

BENCH = LRBConfig(
    n_features=64,
    d_in=48,
    d_out=48,
    sparsity=0.95,
    n_parents=4,
    children_per_parent=4,
    c_min=0.2,
    n_train=20_000,
    n_val=0,
    n_test=4_000,
)
"""64 features in 48 dimensions, 4 planted parents with 4 children each."""

Pair = tuple[int, int]
"""An unordered pair of latents as (smaller id, larger id)."""


def unordered(a: int, b: int) -> Pair:
    return (a, b) if a <= b else (b, a)


class AbsorptionBenchConfig(ReproductionConfig):
    """The bench, the SAEs trained on it and the thresholds of the comparison."""

    data: LRBConfig = Field(default=BENCH, description="The bench with planted hierarchies.")
    topk_ks: tuple[int, ...] = Field(default=(2, 4, 8), description="k of the TopK SAEs.")
    relu_coefficients: tuple[float, ...] = Field(
        default=(0.1, 0.3, 1.0), description="L1 coefficients of the ReLU SAEs."
    )
    d_sae: int = Field(default=64, gt=0, description="Latents of every SAE.")
    steps: int = Field(default=4000, gt=0, description="Adam steps per SAE.")
    batch_size: int = Field(default=256, gt=0, description="SAE batch size.")
    lr: float = Field(default=3e-3, gt=0, description="SAE learning rate.")
    lam: float = Field(default=0.05, gt=0, description="λ at which TopK SAEs and the GT dictionary are diagnosed.")
    match_cosine: float = Field(
        default=0.9, gt=0, le=1, description="A latent is a GT feature's when its decoder cosine is at least this."
    )
    absorbed_share: float = Field(
        default=0.1,
        gt=0,
        lt=1,
        description="A planted edge counts as absorbed when the parent's latent is silent on at least this share "
        "of the points where the child is active and its latent fires ...",
    )
    min_parent_component: float = Field(
        default=0.05,
        ge=0,
        lt=1,
        description="... and the child's atom carries the parent direction: its coefficient on the parent feature, "
        "written in the basis (child feature, parent feature), is at least this.",
    )
    absorption: AbsorptionOptions = Field(
        default=AbsorptionOptions(min_classes=2), description="The label-based criterion's options."
    )

    @classmethod
    def quick(cls, seed: int = 0) -> "AbsorptionBenchConfig":
        return cls(
            seed=seed,
            data=BENCH.model_copy(update={"n_train": 6_000, "n_test": 2_000}),
            topk_ks=(4,),
            relu_coefficients=(1.0,),
            steps=1500,
        )


class Detection(BaseModel):
    """One detector's pairs against a reference set of pairs."""

    flagged: int
    reference: int
    both: int
    precision: float | None = Field(description="both / flagged (None when nothing is flagged).")
    recall: float | None = Field(description="both / reference (None when the reference is empty).")


def detection(flagged: set[Pair], reference: set[Pair]) -> Detection:
    both = len(flagged & reference)
    return Detection(
        flagged=len(flagged),
        reference=len(reference),
        both=both,
        precision=both / len(flagged) if flagged else None,
        recall=both / len(reference) if reference else None,
    )


class Edge(BaseModel):
    """One planted (parent, child) edge in one dictionary."""

    parent_feature: int
    child_feature: int
    parent_latent: int | None
    child_latent: int | None
    absorbed_share: float | None = Field(
        description="P(parent latent silent | child active and its latent fires); None when not both matched."
    )
    parent_component: float | None = Field(
        description="β of the child's unit atom ≈ α·f_child + β·f_parent (least squares): the parent direction "
        "the child latent carries; None when not both matched."
    )

    @property
    def pair(self) -> Pair | None:
        """The two latents as an unordered pair, when both features are matched to distinct latents."""
        m, a = self.parent_latent, self.child_latent
        return unordered(m, a) if m is not None and a is not None and m != a else None


class DictionaryAssessment(BaseModel):
    """One dictionary: fit, GT matching, measured absorption and every detector against it."""

    label: str
    activation: str
    l0: float
    fvu: float
    matched_features: int
    edges: list[Edge]
    n_planted_pairs: int = Field(description="Planted edges whose parent and child have distinct latents.")
    n_absorbed_pairs: int
    detectors: dict[str, dict[str, Detection]] = Field(
        description="detector → {'planted': vs every planted pair, 'absorbed': vs the absorbed ones, "
        "'label-based': vs the label-based pairs}."
    )
    label_based: dict[str, float | None] = Field(description="The label-based metric's headline numbers.")


class AbsorptionBenchResults(BaseModel):
    config: AbsorptionBenchConfig
    dictionaries: list[DictionaryAssessment]
    claims: list[Claim]
    seconds: dict[str, float]


def train_sae(X: Tensor, activation: str, value: float, config: AbsorptionBenchConfig) -> SparseDictionary:
    """A TopK (k = value) or ReLU (coefficient = value) SAE trained on X [N, D]."""
    k = int(value) if activation == "topk" else None
    cfg = DictionaryConfig(
        kind="sae", d_in=X.shape[1], d_out=X.shape[1], d_sae=config.d_sae, activation=activation, k=k
    )
    model = SparseDictionary(cfg, torch.Generator().manual_seed(config.seed))
    coefficient = value if activation == "relu" else 0.0
    recipe = RecipeConfig(lr=config.lr, sparsity_coefficient=coefficient, dead_window_samples=len(X))
    train = TrainConfig(
        batch_size=config.batch_size, steps=config.steps, seed=config.seed, checkpoint_every=0, progress=False
    )
    Trainer([Member(activation, model, recipe)], ShuffledBatches(X, config.batch_size, config.seed), train).fit()
    return model.eval()


def planted_edges(
    codes_true: Tensor, codes: Tensor, atoms: Tensor, features: Tensor, parents: Tensor, cos_min: float
) -> list[Edge]:
    """Every planted edge with its matched latents, measured absorbed share and the parent component of the child's
    atom (codes_true [N, F], codes [N, K], atoms [K, D] unit rows, features [F, D] unit rows)."""
    cos = atoms.double() @ features.double().T  # [K, F]
    best, latent = cos.max(dim=0)
    match = [int(j) if float(c) >= cos_min else None for c, j in zip(best, latent, strict=True)]
    edges = []
    for child in (parents >= 0).nonzero().flatten().tolist():
        parent = int(parents[child])
        m, a = match[parent], match[child]
        share = component = None
        if m is not None and a is not None and m != a:
            fires = (codes_true[:, child] > 0) & (codes[:, a] > 0)
            share = float((codes[fires, m] <= 0).double().mean()) if fires.any() else None
            basis = torch.stack([features[child], features[parent]], dim=1).double()  # [D, 2]
            component = float(torch.linalg.lstsq(basis, atoms[a].double()[:, None]).solution[1, 0])
        edges.append(
            Edge(
                parent_feature=parent,
                child_feature=child,
                parent_latent=m,
                child_latent=a,
                absorbed_share=share,
                parent_component=component,
            )
        )
    return edges


def assess(
    label: str,
    activation: str,
    X: Tensor,
    codes_true: Tensor,
    codes: Tensor,
    atoms: Tensor,
    recon: Tensor,
    diagnostics_pairs: set[Pair],
    tilted: set[Pair],
    label_pairs: set[Pair] | None,
    label_numbers: dict[str, float | None],
    features: Tensor,
    parents: Tensor,
    config: AbsorptionBenchConfig,
) -> DictionaryAssessment:
    edges = planted_edges(codes_true, codes, atoms, features, parents, config.match_cosine)
    # both latents matched and distinct (then parent_component is set too) and the child's latent fired
    measured = [(e.pair, e) for e in edges if e.pair is not None and e.absorbed_share is not None]
    planted = {pair for pair, _ in measured}
    absorbed = {
        pair
        for pair, e in measured
        if (e.absorbed_share or 0.0) >= config.absorbed_share
        and (e.parent_component or 0.0) >= config.min_parent_component
    }
    detectors: dict[str, dict[str, Detection]] = {}
    for name, flagged in (("nested", diagnostics_pairs), ("tilted", tilted), ("label-based", label_pairs)):
        if flagged is None:
            continue
        detectors[name] = {"planted": detection(flagged, planted), "absorbed": detection(flagged, absorbed)}
        if label_pairs is not None and name != "label-based":
            detectors[name]["label-based"] = detection(flagged, label_pairs)
    centred = X - X.mean(dim=0)
    fvu = float((recon - X).pow(2).sum() / centred.pow(2).sum())
    return DictionaryAssessment(
        label=label,
        activation=activation,
        l0=float((codes > 0).sum(dim=1).double().mean()),
        fvu=fvu,
        matched_features=int(((atoms.double() @ features.double().T).max(dim=0).values >= config.match_cosine).sum()),
        edges=edges,
        n_planted_pairs=len(planted),
        n_absorbed_pairs=len(absorbed),
        detectors=detectors,
        label_based=label_numbers,
    )


def run_absorption_bench(config: AbsorptionBenchConfig, out: Path, echo: Echo = print) -> AbsorptionBenchResults:
    """Generate the bench, train the SAEs, score every detector; write results.json, results.md, report.html."""
    from dictlab.reproductions.absorption.report import absorption_claims, absorption_markdown

    clock = Stopwatch()
    dataset = generate_lrb(config.data)
    view = dataset.view("sae")
    parents = dataset.parents
    if parents is None:
        raise ValueError("the bench config plants no hierarchy: set data.n_parents > 0")
    features = view.truth.features_out
    X, _ = view.materialize(dataset.codes("train"))
    codes_true = dataset.codes("test")
    X_test, _ = view.materialize(codes_true)
    class_data = planted_class_data(X_test, codes_true, parents, config.absorption.seed)
    clock.lap("data")

    gt = L1Dictionary(features.double(), None)
    diagnosis = diagnose_codes(X_test.double(), gt, SparseCodes.from_dense(codes_true.double()), config.lam)
    gt_pairs = {unordered(p["parent"], p["child"]) for p in nested_pairs(diagnosis)}
    gt_tilted = {unordered(p.parent, p.child) for p in tilted_pairs(SparseCodes.from_dense(codes_true), features)}
    assessments = [
        assess(
            "GT dictionary, true codes",
            "gt",
            X_test,
            codes_true,
            codes_true,
            features,
            codes_true @ features,
            gt_pairs,
            gt_tilted,
            None,
            {},
            features,
            parents,
            config,
        )
    ]
    clock.lap("gt")
    runs = [("topk", float(k)) for k in config.topk_ks] + [("relu", c) for c in config.relu_coefficients]
    for activation, value in runs:
        label = f"TopK k={int(value)}" if activation == "topk" else f"ReLU coefficient {value:g}"
        model = train_sae(X, activation, value, config)
        with torch.no_grad():
            codes = model.encode(X_test)
            recon = model.decode(codes)
        atoms = torch.nn.functional.normalize(model.W_dec.detach(), dim=1)
        options = DiagnoseOptions(lam=config.lam if activation == "topk" else None, codes="encoder")
        diagnosis = diagnose_model(
            model, X_test, options=options, training_coefficient=value if activation == "relu" else None
        )
        flagged = {unordered(p["parent"], p["child"]) for p in nested_pairs(diagnosis)}
        tilted = {unordered(p.parent, p.child) for p in tilted_pairs(SparseCodes.from_dense(codes), atoms)}
        run = class_absorption(model, class_data, config.absorption)
        label_pairs = {unordered(p.absorbing, p.main) for p in run.pairs}
        numbers = {
            "mean_absorption_fraction": run.means.mean_absorption_fraction_score,
            "mean_full_absorption": run.means.mean_full_absorption_score,
            "mean_num_split_features": run.means.mean_num_split_features,
            "probe_mean_f1": class_data.probe_report.mean_f1,
        }
        assessments.append(
            assess(
                label,
                activation,
                X_test,
                codes_true,
                codes,
                atoms,
                recon,
                flagged,
                tilted,
                label_pairs,
                numbers,
                features,
                parents,
                config,
            )
        )
        echo(f"absorption: {label}: L0 {assessments[-1].l0:.2f}, {assessments[-1].n_absorbed_pairs} absorbed pairs")
        clock.lap(label)
    results = AbsorptionBenchResults(config=config, dictionaries=assessments, claims=[], seconds=clock.seconds)
    results.claims = absorption_claims(results)
    finish("absorption", out, results, absorption_markdown, clock, echo)
    return results
