"""``dictlab reproduce real-anchoring``: the analogue of Tang et al.'s Table 2 (CLIP ImageNet class-mean anchors)
on a model available offline.

Sentence embeddings (mean-pooled last block of all-MiniLM-L6-v2) of WordNet noun glosses, labelled by their 26
lexnames, are captured into an activation store. Normalised, centred class means of the training rows are the
proxy ground truth; a seeded half of the classes anchors the first latents of TopK, BatchTopK and Matryoshka SAEs
(each trained without and with anchors from the same initialisation on the same batches), and recovery is
measured against the class means of the other half only.
"""

from pathlib import Path

import torch
from pydantic import BaseModel, Field

from dictlab.data.store import ActivationStore, StoreBatches
from dictlab.jobs.capture import CaptureConfig, run_capture
from dictlab.metrics import Evaluation, evaluate_dictionary
from dictlab.models import DictionaryConfig, SparseDictionary, save_dictionary
from dictlab.reproductions.base import ReproductionConfig, finish
from dictlab.reproductions.claims import Claim, Echo
from dictlab.reproductions.real_anchoring.report import anchoring_claims, anchoring_markdown, plot_anchoring
from dictlab.stopwatch import Stopwatch
from dictlab.training import Member, RecipeConfig, TrainConfig, Trainer, identity_view
from dictlab.training.concept_anchors import class_mean_anchors, class_mean_directions


class RealAnchoringConfig(ReproductionConfig):
    """Data, dictionaries and training of the real-activation anchoring experiment."""

    model: str = Field(default="minilm", description="Model alias or folder.")
    module: str = Field(default="layer:5", description="Module whose mean-pooled output is the embedding.")
    corpus: str = Field(default="wordnet-nouns", description="Labelled corpus.")
    max_per_class: int = Field(default=600, gt=0, description="Texts per class at most (balanced subsample).")
    n_anchored: int = Field(
        default=13, gt=0, description="Classes used as anchors (the rest are the evaluation truth)."
    )
    methods: tuple[str, ...] = Field(
        default=("topk", "batchtopk", "matryoshka"), description="Activations of the SAEs (each trained plain and +FA)."
    )
    expansion: int = Field(default=4, gt=0, description="d_sae = expansion × width.")
    k: int = Field(default=16, gt=0, description="Active latents.")
    epochs: float = Field(default=40.0, gt=0)
    batch_size: int = Field(default=256, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    anchor_coefficient: float = Field(default=0.1, ge=0, description="λ_anchor (the paper's value).")
    holdout_fraction: float = Field(
        default=0.1, gt=0, lt=1, description="Share of rows held out for FVU/L0 and accuracy."
    )
    chunk_rows: int = Field(default=256, gt=0, description="Store chunk size (the unit of the held-out split).")

    @classmethod
    def quick(cls, seed: int = 0) -> "RealAnchoringConfig":
        return cls(seed=seed, max_per_class=16, expansion=1, k=4, epochs=4, batch_size=64, chunk_rows=32)


class MethodResult(BaseModel):
    method: str
    anchored: bool
    evaluation: Evaluation
    anchor_cosine_dec: float | None = Field(description="Mean cosine of anchored decoder rows to their anchors.")


class RealAnchoringResults(BaseModel):
    config: RealAnchoringConfig
    store_rows: int
    training_rows: int
    heldout_rows: int
    width: int
    classes: list[str]
    anchored_classes: list[str]
    nearest_class_mean_accuracy: float = Field(description="Held-out rows classified by the nearest class direction.")
    chance_accuracy: float
    runs: list[MethodResult]
    claims: list[Claim] = Field(default_factory=list)
    seconds: dict[str, float] = Field(default_factory=dict)


def _rows_and_labels(
    store: ActivationStore, chunks: list[int], chunk_rows: int, scale: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled rows [n, d] and their class labels [n] of the given chunks."""
    labels = torch.from_numpy(store.labels())
    rows = [torch.from_numpy(store.read(c * chunk_rows, (c + 1) * chunk_rows)).float() for c in chunks]
    index = torch.cat([torch.arange(c * chunk_rows, (c + 1) * chunk_rows) for c in chunks])
    return torch.cat(rows) * scale, labels[index]


def nearest_class_accuracy(
    rows: torch.Tensor, labels: torch.Tensor, directions: torch.Tensor, center: torch.Tensor
) -> float:
    """Share of rows [n, d] whose centred row has the largest cosine with its own class direction."""
    scores = torch.nn.functional.normalize(rows - center, dim=1) @ directions.T
    return (scores.argmax(dim=1) == labels).float().mean().item()


def run_real_anchoring(config: RealAnchoringConfig, out: Path, echo: Echo) -> RealAnchoringResults:
    """Capture the embeddings, train every method plain and +FA, measure recovery of the other class means."""
    clock = Stopwatch()
    store_dir = out / "store"
    run_capture(
        CaptureConfig(
            model=config.model,
            module=(config.module,),
            corpus=config.corpus,
            out=store_dir,
            pool="mean",
            max_per_class=config.max_per_class,
            seed=config.seed,
            progress=True,
        ),
        echo,
    )
    clock.lap("capture")
    store = ActivationStore(store_dir)
    n_classes = len(store.label_names)
    scale = store.width**0.5 / store.entry.stats.rms_norm
    batches = StoreBatches(
        store,
        config.batch_size,
        config.seed,
        buffer_rows=store.n_rows,
        chunk_rows=config.chunk_rows,
        holdout_fraction=config.holdout_fraction,
        scale=scale,
    )
    train_rows, train_labels = _rows_and_labels(store, batches.train_chunks, config.chunk_rows, scale)
    held_rows, held_labels = _rows_and_labels(store, batches.held_chunks, config.chunk_rows, scale)
    directions = class_mean_directions(train_rows, train_labels, n_classes, centered=True)
    class_means = torch.stack([train_rows[train_labels == c].mean(dim=0) for c in range(n_classes)])
    accuracy = nearest_class_accuracy(held_rows, held_labels, directions, class_means.mean(dim=0))
    generator = torch.Generator().manual_seed(config.seed)
    anchored = sorted(torch.randperm(n_classes, generator=generator)[: config.n_anchored].tolist())
    anchors = class_mean_anchors(directions, anchored)
    echo(
        f"{store.n_rows} embeddings ({len(train_rows)} train / {len(held_rows)} held out) in {n_classes} classes; "
        f"nearest-class-direction accuracy {accuracy:.1%} (chance {1 / n_classes:.1%}); anchors: {len(anchored)}"
    )
    runs = []
    for method in config.methods:
        cfg = DictionaryConfig(
            d_in=store.width, d_out=store.width, d_sae=config.expansion * store.width, activation=method, k=config.k
        )
        base = RecipeConfig(lr=config.lr, aux_coefficient=1 / 32, dead_window_samples=batches.n_samples)
        members = [
            Member(
                name,
                SparseDictionary(cfg, torch.Generator().manual_seed(config.seed)),
                base.model_copy(update={"anchor_coefficient": config.anchor_coefficient if fa else 0.0}),
                anchors=anchors if fa else None,
            )
            for name, fa in ((method, False), (f"{method}-fa", True))
        ]
        train = TrainConfig(batch_size=config.batch_size, epochs=config.epochs, seed=config.seed, log_every=100)
        Trainer(members, batches, train, out / "train" / method).fit()
        for member, fa in zip(members, (False, True), strict=True):
            model = member.model.cpu().eval()
            evaluation = evaluate_dictionary(
                model, directions, directions, held_rows, identity_view, anchored_features=anchored
            )
            cosine = None
            if fa:
                cosine = (
                    torch.nn.functional.cosine_similarity(model.W_dec[: len(anchored)].detach(), anchors.directions_out)
                    .mean()
                    .item()
                )
            runs.append(MethodResult(method=method, anchored=fa, evaluation=evaluation, anchor_cosine_dec=cosine))
            save_dictionary(model, out / "runs" / member.name, {"experiment": "real-anchoring", "scale": scale})
        clock.lap(method)
        echo(
            f"{method}: "
            + ", ".join(
                f"{'FA' if r.anchored else 'plain'} dec MIP {r.evaluation.mip_dec:.3f} FVU {r.evaluation.fvu:.3f}"
                for r in runs[-2:]
            )
        )
    results = RealAnchoringResults(
        config=config,
        store_rows=store.n_rows,
        training_rows=batches.n_samples,
        heldout_rows=len(held_rows),
        width=store.width,
        classes=store.label_names,
        anchored_classes=[store.label_names[c] for c in anchored],
        nearest_class_mean_accuracy=accuracy,
        chance_accuracy=1 / n_classes,
        runs=runs,
        seconds=dict(clock.seconds),
    )
    results.claims = anchoring_claims(results)
    plot_anchoring(results, out / "figures" / "recovery_curves.png")
    finish("real-anchoring", out, results, anchoring_markdown, clock, echo)
    return results
