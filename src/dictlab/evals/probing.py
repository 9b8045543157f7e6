"""k-sparse probing (SAEBench's ``sparse_probing``) on a labelled activation store, with baselines.

Definitions, after ``adamkarvonen/SAEBench`` 0.6.0 (``sae_bench/evals/sparse_probing/main.py``,
``probe_training.py``, ``sae_bench_utils/activation_collection.py``) and Gurnee et al., "Finding Neurons in a
Haystack" (arXiv:2305.01610, §3):

* A text is represented by the mean over its tokens — of the model activation (``llm``) or of the SAE latents
  (``sae``: every token is encoded, then the codes are averaged; not the encoding of the mean).
* Every class gives one binary task, the class against the rest: all of the class's texts of a split are positives,
  and as many negatives are drawn from the other classes, ⌈n_pos / (classes − 1)⌉ from each, then cut to n_pos
  (SAEBench's ``prepare_probe_data``), separately for the train and the test split.
* k-sparse probe: on the task's training texts, rank the dimensions by |mean(positives) − mean(negatives)| (the
  absolute difference, as SAEBench's ``get_top_k_mean_diff_mask``: a latent that fires *less* on the class counts
  too), keep the top k and fit a logistic regression (L2, C = 1, max_iter = 1000, SAEBench's ``train_sklearn_probe``)
  on them; report held-out accuracy (and F1 of the positive class) on the task's test texts.
* Metrics are means over the classes (SAEBench averages over the classes of a dataset; here the store is the one
  dataset).

Where dictlab differs from SAEBench, and why:

* Data: the texts and labels of an offline dictlab store (captured with ``skip_first`` and ``drop_special``, so the
  BOS/pad/EOS tokens SAEBench masks out are not rows), not SAEBench's eight HF datasets; every class with at least
  ``min_class_texts`` texts is a task (SAEBench hand-picks ≤ 5 classes per dataset). Texts are split into train/test
  per class (stratified, ``test_fraction``; SAEBench: 4000 train / 1000 test texts per binary task, i.e. up to
  2000 + 500 texts per class, which is the default ``max_texts_per_class``).
* The full-width probes (``llm_test_accuracy``, ``sae_test_accuracy``) are sklearn logistic regressions like the
  k-sparse ones; SAEBench trains those two with a torch probe (AdamW, early-stopped on *test* accuracy), which
  selects on the held-out set. Ours never sees the test texts.
* Extra baselines on the same texts and tasks (SAEBench has none): the first k principal components of the pooled
  activations (PCA fitted on all training texts), and a randomly initialised SAE of the same architecture config
  (dictlab's own initialisation, fixed seed) with the same selection. They go in the extra ``dictlab`` category of
  :meth:`SparseProbingResult.saebench_metrics`, together with the F1 scores and any k SAEBench has no field for.

* Stores pooled at capture (``settings.pool`` ≠ ``none``) are refused: their rows are per-text means, and the codes
  of a mean are not the mean of the codes.

Speed: the probes are many small logistic regressions (a few thousand texts × ≤ d_sae columns); they run with
BLAS limited to one thread, which on a busy machine is many times faster than BLAS threads contending for cores.

Memory: pooling keeps per-text sums only — [n_texts, d_in] and [n_texts, d_sae] float32 (20,000 texts × 4096
latents is 330 MB; it grows linearly in both, so cap ``max_texts`` for very wide SAEs) — and one
[batch_size, d_sae] batch of codes at a time.
"""

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits
from torch import Tensor

from dictlab.data.store import ActivationStore
from dictlab.data.store.manifest import MANIFEST_FILE
from dictlab.models.config import DictionaryConfig
from dictlab.models.dictionary import SparseDictionary
from dictlab.progress import progress_bar

EVAL_TYPE_ID = "sparse_probing"
SAEBENCH_KS = (1, 2, 5, 10, 20, 50, 100)
"""The k that SAEBench 0.6.0's ``SparseProbingLlmMetrics`` / ``SparseProbingSaeMetrics`` have fields for."""
EXTRA_CATEGORY = "dictlab"
"""The metric category that holds what SAEBench has no field for (baselines, F1, other k)."""


class ProbingOptions(BaseModel):
    """Knobs of k-sparse probing (defaults: SAEBench's, where it has the knob)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    ks: tuple[int, ...] = Field(default=(1, 2, 5, 10, 20), description="k of the k-sparse probes.")
    test_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of each class's texts held out for testing (SAEBench: 1000/5000)."
    )
    max_texts_per_class: int = Field(
        default=2500, gt=1, description="Texts per class at most (SAEBench: 2000 train + 500 test per class)."
    )
    max_texts: int = Field(
        default=20_000, gt=1, description="Texts in all at most (memory: n_texts × d_sae float32 for the pooled codes)."
    )
    min_class_texts: int = Field(
        default=20, ge=4, description="A class needs this many texts with rows to be a task (fewer: skipped)."
    )
    classes: tuple[str, ...] | None = Field(
        default=None, description="Label names to probe (default: every class with min_class_texts texts)."
    )
    C: float = Field(default=1.0, gt=0, description="Inverse L2 strength of the logistic regression (sklearn's C).")
    max_iter: int = Field(default=1000, gt=0, description="Iterations of the logistic regression at most.")
    full_probes: bool = Field(
        default=True, description="Also probe on all dimensions (llm_test_accuracy, sae_test_accuracy)."
    )
    seed: int = Field(default=42, description="Seed of the text split, the negatives and the random SAE.")
    batch_size: int = Field(default=4096, gt=0, description="Store rows per batch when pooling.")

    @field_validator("ks")
    @classmethod
    def _ks(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or min(value) < 1:
            raise ValueError(f"ks must be positive integers, got {value}")
        return tuple(sorted(set(value)))


@dataclass(frozen=True)
class BinaryTask:
    """One class against the rest: positions into :class:`ProbingData`'s texts and 0/1 targets."""

    name: str
    train: np.ndarray
    """int64 [n_train]: text slots of the training texts."""
    train_y: np.ndarray
    """int64 [n_train]: 1 for the class, 0 for the drawn negatives."""
    test: np.ndarray
    test_y: np.ndarray


@dataclass(frozen=True)
class ProbingData:
    """What every SAE of a store shares: the texts, their pooled activations, the split and the binary tasks."""

    store: Path
    module: str
    texts: np.ndarray
    """int64 [n_texts], sorted: corpus index of every probed text."""
    labels: np.ndarray
    """int64 [n_texts]: index into ``class_names``."""
    counts: np.ndarray
    """int64 [n_texts]: rows (tokens) of every text."""
    pooled: np.ndarray
    """float32 [n_texts, d_in]: mean activation over each text's rows."""
    class_names: list[str]
    skipped_classes: list[str]
    """Label names with too few texts (fewer than ``min_class_texts``)."""
    train: np.ndarray
    """int64: text slots of the training split (all classes)."""
    test: np.ndarray
    tasks: list[BinaryTask]

    @property
    def dataset_name(self) -> str:
        return self.store.name


class ProbeScore(BaseModel):
    """Held-out scores of one probe."""

    accuracy: float
    f1: float = Field(description="F1 of the positive class (the probed class).")


class ClassProbes(BaseModel):
    """One class's binary task under one representation."""

    name: str
    n_train: int
    n_test: int
    full: ProbeScore | None = Field(default=None, description="Probe on all dimensions.")
    top_k: dict[int, ProbeScore] = Field(default_factory=dict, description="k → k-sparse probe.")
    top_dims: list[int] = Field(
        default_factory=list,
        description="Dimensions ranked by |mean difference| (the first max k; the k-probe "
        "reads the first k). PCA: components 0, 1, …",
    )
    top_diffs: list[float] = Field(
        default_factory=list, description="Signed mean(positives) − mean(negatives) of ``top_dims``."
    )


class ProbeFamily(BaseModel):
    """Every class's probes under one representation (SAE latents, raw activations, PCA, a random SAE)."""

    description: str
    classes: list[ClassProbes]
    unconverged: int = Field(default=0, description="Logistic regressions that hit max_iter.")

    def mean(self, k: int | None, metric: str = "accuracy") -> float | None:
        """Mean over classes of the k-sparse probe's ``metric`` (k None: the full probe); None if not computed."""
        scores = [c.full if k is None else c.top_k.get(k) for c in self.classes]
        if not scores or any(s is None for s in scores):
            return None
        return float(np.mean([getattr(s, metric) for s in scores]))


class ProbingBaselines(BaseModel):
    """The SAE-independent probes of one store: raw activations (SAEBench's ``llm``), PCA and a random SAE of one
    architecture config (they depend only on the store, the options and that config)."""

    llm: ProbeFamily
    pca: ProbeFamily
    random_sae: ProbeFamily
    random_config: dict[str, object] = Field(description="DictionaryConfig of the random SAE.")


class SparseProbingResult(BaseModel):
    """k-sparse probing of one SAE on one store, with baselines on the same texts and tasks."""

    store: str
    module: str
    dataset_name: str
    ks: list[int]
    n_texts: int
    n_train_texts: int
    n_test_texts: int
    classes: list[str]
    skipped_classes: list[str]
    sae: ProbeFamily
    baselines: ProbingBaselines

    def _saebench_flat(self) -> tuple[dict[str, float | None], dict[str, float | None], dict[str, float | None]]:
        llm: dict[str, float | None] = {"llm_test_accuracy": self.baselines.llm.mean(None)}
        sae: dict[str, float | None] = {"sae_test_accuracy": self.sae.mean(None)}
        extra: dict[str, float | None] = {
            "random_sae_test_accuracy": self.baselines.random_sae.mean(None),
            "llm_test_f1": self.baselines.llm.mean(None, "f1"),
            "sae_test_f1": self.sae.mean(None, "f1"),
        }
        for k in self.ks:
            (llm if k in SAEBENCH_KS else extra)[f"llm_top_{k}_test_accuracy"] = self.baselines.llm.mean(k)
            (sae if k in SAEBENCH_KS else extra)[f"sae_top_{k}_test_accuracy"] = self.sae.mean(k)
            extra[f"pca_top_{k}_test_accuracy"] = self.baselines.pca.mean(k)
            extra[f"random_sae_top_{k}_test_accuracy"] = self.baselines.random_sae.mean(k)
            for name, family in (("llm", self.baselines.llm), ("sae", self.sae)):
                extra[f"{name}_top_{k}_test_f1"] = family.mean(k, "f1")
        return llm, sae, extra

    def saebench_metrics(self) -> dict[str, dict[str, float | int | None]]:
        """SAEBench's ``llm`` and ``sae`` categories (its metric names), plus ``dictlab``: PCA and random-SAE
        baselines, F1 scores and k that SAEBench has no field for."""
        llm, sae, extra = self._saebench_flat()
        return {"llm": dict(llm), "sae": dict(sae), EXTRA_CATEGORY: dict(extra)}

    def saebench_details(self) -> list[dict[str, object]]:
        """SAEBench's ``eval_result_details``: one entry per dataset (here the store) with its llm/sae metrics."""
        llm, sae, _ = self._saebench_flat()
        return [{"dataset_name": self.dataset_name, **llm, **sae}]

    def saebench_unstructured(self) -> dict[str, object]:
        """SAEBench's ``eval_result_unstructured``: ``<dataset>_results`` → metric → class → accuracy."""
        per_metric: dict[str, dict[str, float]] = {}
        for prefix, family in (("llm", self.baselines.llm), ("sae", self.sae)):
            for c in family.classes:
                if c.full is not None:
                    per_metric.setdefault(f"{prefix}_test_accuracy", {})[c.name] = c.full.accuracy
                for k, score in c.top_k.items():
                    per_metric.setdefault(f"{prefix}_top_{k}_test_accuracy", {})[c.name] = score.accuracy
        return {f"{self.dataset_name}_results": per_metric}


# ---------------------------------------------------------------------------------------------------- the data


def _manifest(store: ActivationStore) -> Path:
    return store.root / MANIFEST_FILE


def _choose_texts(
    store: ActivationStore, options: ProbingOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """(texts, label slot, row counts, class names, skipped names) of the texts to probe."""
    names = store.label_names
    if len(names) < 2:
        raise ValueError(
            f"k-sparse probing needs per-text labels of at least two classes, but {_manifest(store)} has "
            f"label_names {names or '[]'} (with labels.npy): capture a labelled corpus (a named corpus or a .jsonl "
            "with a label field)"
        )
    text_of_row = store.text_index()
    if store.manifest.settings.get("pool", "none") != "none":
        raise ValueError(
            f"{_manifest(store)}: settings.pool is not 'none' (its rows are per-text means): k-sparse probing "
            "averages the SAE's codes over a text's tokens and needs one row per token; capture with --pool none"
        )
    per_row = store.labels()
    counts_all = np.bincount(text_of_row, minlength=int(text_of_row.max()) + 1 if text_of_row.size else 0)
    texts_all = np.flatnonzero(counts_all)
    label_of_text = np.zeros(counts_all.shape[0], np.int64)
    label_of_text[text_of_row] = per_row
    labels_all = label_of_text[texts_all]
    if options.classes is not None:
        unknown = [c for c in options.classes if c not in names]
        if unknown:
            raise ValueError(f"classes {unknown} are not among the label_names of {_manifest(store)}: {names}")
        wanted = [names.index(c) for c in options.classes]
    else:
        wanted = list(range(len(names)))
    per_class = np.bincount(labels_all, minlength=len(names))
    kept = [c for c in wanted if per_class[c] >= options.min_class_texts]
    skipped = [names[c] for c in wanted if per_class[c] < options.min_class_texts]
    if len(kept) < 2:
        raise ValueError(
            f"k-sparse probing needs at least two classes with >= {options.min_class_texts} texts, but the labels of "
            f"{_manifest(store)} (label_names {names}, labels.npy) give "
            f"{dict(zip(names, per_class.tolist(), strict=True))} texts with rows; lower min_class_texts or capture "
            "more texts per class"
        )
    cap = _per_class_cap([int(per_class[c]) for c in kept], options.max_texts_per_class, options.max_texts)
    if cap < options.min_class_texts:
        raise ValueError(
            f"max_texts = {options.max_texts} leaves fewer than min_class_texts = {options.min_class_texts} texts for "
            f"some of the {len(kept)} classes of {_manifest(store)}: raise max_texts or probe fewer classes"
        )
    rng = np.random.default_rng([options.seed, 0])
    picked = np.sort(np.concatenate([rng.permutation(np.flatnonzero(labels_all == c))[:cap] for c in kept]))
    slot = {c: i for i, c in enumerate(kept)}
    labels = np.asarray([slot[int(c)] for c in labels_all[picked]], np.int64)
    texts = texts_all[picked]
    return texts, labels, counts_all[texts], [names[c] for c in kept], skipped


def _per_class_cap(sizes: list[int], per_class: int, total: int) -> int:
    """The largest cap ≤ ``per_class`` with Σ min(size, cap) ≤ ``total``: small classes stay whole, large ones are
    cut to the same size."""
    cap = min(per_class, max(sizes))
    while cap > 0 and sum(min(size, cap) for size in sizes) > total:
        cap -= max(1, (sum(min(size, cap) for size in sizes) - total) // len(sizes))
    return max(cap, 0)


def _split(labels: np.ndarray, n_classes: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified train/test slots: per class, round(test_fraction · n) (at least 1, at most n − 1) test texts."""
    rng = np.random.default_rng([seed, 1])
    train, test = [], []
    for c in range(n_classes):
        members = rng.permutation(np.flatnonzero(labels == c))
        n_test = min(max(1, round(test_fraction * members.size)), members.size - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _one_vs_rest(
    slots: np.ndarray, labels: np.ndarray, c: int, n_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """SAEBench's ``prepare_probe_data``: the class's texts among ``slots`` and as many drawn from the others."""
    positives = slots[labels[slots] == c]
    per_class = math.ceil(positives.size / (n_classes - 1))
    pool = [rng.permutation(slots[labels[slots] == other])[:per_class] for other in range(n_classes) if other != c]
    negatives = rng.permutation(np.concatenate(pool))[: positives.size]
    order = rng.permutation(positives.size + negatives.size)
    chosen = np.concatenate([positives, negatives])[order]
    y = np.concatenate([np.ones(positives.size, np.int64), np.zeros(negatives.size, np.int64)])[order]
    return chosen, y


def _tasks(labels: np.ndarray, names: list[str], train: np.ndarray, test: np.ndarray, seed: int) -> list[BinaryTask]:
    tasks = []
    for c, name in enumerate(names):
        rng = np.random.default_rng([seed, 2, c])
        tr, tr_y = _one_vs_rest(train, labels, c, len(names), rng)
        te, te_y = _one_vs_rest(test, labels, c, len(names), rng)
        tasks.append(BinaryTask(name, tr, tr_y, te, te_y))
    return tasks


def pool_texts(
    store: ActivationStore,
    texts: np.ndarray,
    counts: np.ndarray,
    encode: Callable[[Tensor], Tensor] | None,
    width: int,
    batch_size: int,
    device: torch.device | str = "cpu",
    progress: bool = False,
    desc: str = "pool",
) -> np.ndarray:
    """Mean over every text's rows of ``encode(rows)`` (the rows themselves when ``encode`` is None): float32
    [len(texts), width]. ``texts`` [n] sorted corpus indices, ``counts`` [n] their row counts. Streams the store
    in ``batch_size`` rows; only the per-text sums and one batch of codes are held."""
    sums = torch.zeros(len(texts), width, dtype=torch.float32, device=device)
    starts = range(0, store.n_rows, batch_size)
    for lo in progress_bar(starts, desc=desc, unit=" batches", enabled=progress):
        hi = min(lo + batch_size, store.n_rows)
        text_of_row = store.text_index(lo, hi)
        slot = np.searchsorted(texts, text_of_row)
        slot = np.minimum(slot, len(texts) - 1)
        keep = texts[slot] == text_of_row
        if not keep.any():
            continue
        rows = torch.from_numpy(np.ascontiguousarray(store.read(lo, hi)[keep], dtype=np.float32)).to(device)
        with torch.no_grad():
            values = rows if encode is None else encode(rows)
        sums.index_add_(0, torch.from_numpy(slot[keep]).to(device), values.float())
    return (sums / torch.from_numpy(counts).to(device=device, dtype=torch.float32)[:, None]).cpu().numpy()


def probing_data(store: ActivationStore, options: ProbingOptions, progress: bool = False) -> ProbingData:
    """Choose the texts, mean-pool their raw activations and fix the split and the binary tasks (once per store:
    every SAE evaluated on it reuses them)."""
    texts, labels, counts, names, skipped = _choose_texts(store, options)
    pooled = pool_texts(store, texts, counts, None, store.width, options.batch_size, progress=progress, desc="pool")
    train, test = _split(labels, len(names), options.test_fraction, options.seed)
    return ProbingData(
        store=store.root,
        module=store.entry.name,
        texts=texts,
        labels=labels,
        counts=counts,
        pooled=pooled,
        class_names=names,
        skipped_classes=skipped,
        train=train,
        test=test,
        tasks=_tasks(labels, names, train, test, options.seed),
    )


# ---------------------------------------------------------------------------------------------------- the probes


def top_k_mean_diff(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k dimensions of ``x`` [n, d] with the largest |mean over y = 1 − mean over y = 0| (ties: lower index
    first) and their signed differences: (int64 [k], float [k])."""
    diff = x[y == 1].mean(axis=0) - x[y == 0].mean(axis=0)
    order = np.argsort(-np.abs(diff), kind="stable")[:k]
    return order, diff[order]


@dataclass
class _Fitter:
    options: ProbingOptions
    unconverged: int = 0

    def score(self, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> ProbeScore:
        """Logistic regression (L2, SAEBench's sklearn probe) fitted on the training texts, scored on the test ones."""
        probe = LogisticRegression(C=self.options.C, max_iter=self.options.max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            probe.fit(x_train, y_train)
        if int(np.max(probe.n_iter_)) >= self.options.max_iter:
            self.unconverged += 1
        predicted = probe.predict(x_test)
        f1 = f1_score(y_test, predicted, zero_division=0.0)  # pyright: ignore[reportArgumentType]
        return ProbeScore(accuracy=float(accuracy_score(y_test, predicted)), f1=float(f1))


def _probe_family(
    features: np.ndarray,
    tasks: Sequence[BinaryTask],
    options: ProbingOptions,
    description: str,
    select: bool,
    full: bool,
    progress: bool = False,
) -> ProbeFamily:
    """Probes of every task on ``features`` [n_texts, d]: top-k by mean difference (``select``) or the first k
    columns (PCA), and on all columns when ``full``."""
    fitter = _Fitter(options)
    out = []
    max_k = max(options.ks)
    with threadpool_limits(limits=1, user_api="blas"):  # see the module docstring (Speed)
        for task in progress_bar(tasks, desc=f"probe {description.split(':')[0]}", unit=" classes", enabled=progress):
            out.append(_class_probes(features, task, options, fitter, select, full, max_k))
    return ProbeFamily(description=description, classes=out, unconverged=fitter.unconverged)


def _class_probes(
    features: np.ndarray,
    task: BinaryTask,
    options: ProbingOptions,
    fitter: _Fitter,
    select: bool,
    full: bool,
    max_k: int,
) -> ClassProbes:
    x_train, x_test = features[task.train], features[task.test]
    if select:
        dims, diffs = top_k_mean_diff(x_train, task.train_y, max_k)
    else:
        dims = np.arange(min(max_k, features.shape[1]))
        diffs = x_train[task.train_y == 1][:, dims].mean(0) - x_train[task.train_y == 0][:, dims].mean(0)
    top_k = {
        k: fitter.score(x_train[:, dims[:k]], task.train_y, x_test[:, dims[:k]], task.test_y)
        for k in options.ks
        if k <= features.shape[1]
    }
    return ClassProbes(
        name=task.name,
        n_train=int(task.train.size),
        n_test=int(task.test.size),
        full=fitter.score(x_train, task.train_y, x_test, task.test_y) if full else None,
        top_k=top_k,
        top_dims=[int(d) for d in dims],
        top_diffs=[float(d) for d in diffs],
    )


def _device(dictionary: SparseDictionary) -> torch.device:
    return dictionary.W_enc.device


def pooled_codes(
    dictionary: SparseDictionary,
    store: ActivationStore,
    data: ProbingData,
    options: ProbingOptions,
    progress: bool = False,
    desc: str = "pool SAE",
) -> np.ndarray:
    """Mean over every text's rows of the dictionary's codes: float32 [n_texts, d_sae]."""
    if dictionary.cfg.d_in != store.width:
        raise ValueError(
            f"the dictionary reads d_in = {dictionary.cfg.d_in} but module {store.entry.name} of {_manifest(store)} "
            f"has width {store.width}"
        )
    dtype = dictionary.W_enc.dtype

    def encode(rows: Tensor) -> Tensor:
        return dictionary.encode(rows.to(dtype))

    return pool_texts(
        store,
        data.texts,
        data.counts,
        encode,
        dictionary.cfg.d_sae,
        options.batch_size,
        _device(dictionary),
        progress,
        desc,
    )


def random_dictionary(config: DictionaryConfig, seed: int) -> SparseDictionary:
    """An untrained dictionary of ``config``: dictlab's initialisation (unit-norm decoder rows, W_enc = W_decᵀ,
    zero biases) from ``torch.Generator().manual_seed(seed)``, in eval mode."""
    return SparseDictionary(config, torch.Generator().manual_seed(seed)).eval()


def probing_baselines(
    store: ActivationStore,
    data: ProbingData,
    config: DictionaryConfig,
    options: ProbingOptions,
    progress: bool = False,
) -> ProbingBaselines:
    """Raw-activation probes (SAEBench's ``llm``: all d_in dims, and top-k channels by mean difference), PCA-k
    probes (PCA fitted on all training texts, the first k components) and a random SAE of ``config`` with the same
    selection — on ``data``'s texts and tasks. Depends on (store, options, config) only: cache it per width and
    architecture."""
    x = data.pooled
    llm = _probe_family(
        x,
        data.tasks,
        options,
        f"raw activations: {x.shape[1]} dims of {data.module}",
        True,
        options.full_probes,
        progress,
    )
    n_components = min(max(options.ks), data.train.size, x.shape[1])
    with threadpool_limits(limits=1, user_api="blas"):
        pca = PCA(n_components=n_components, svd_solver="full").fit(x[data.train])
        components = pca.transform(x).astype(np.float32)
    pca_family = _probe_family(
        components,
        data.tasks,
        options,
        "PCA: first k principal components (fitted on the training texts)",
        False,
        False,
        progress,
    )
    random_sae = random_dictionary(config, options.seed)
    codes = pooled_codes(random_sae, store, data, options, progress, desc="pool random SAE")
    random_family = _probe_family(
        codes,
        data.tasks,
        options,
        f"random SAE: untrained {config.activation}, d_sae {config.d_sae}, seed {options.seed}",
        True,
        options.full_probes,
        progress,
    )
    return ProbingBaselines(
        llm=llm, pca=pca_family, random_sae=random_family, random_config=config.model_dump(mode="json")
    )


def sparse_probing(
    dictionary: SparseDictionary,
    store: ActivationStore,
    data: ProbingData,
    options: ProbingOptions,
    progress: bool = False,
    baselines: ProbingBaselines | None = None,
) -> SparseProbingResult:
    """k-sparse probing of ``dictionary`` on ``data``'s texts (from :func:`probing_data` with the same options),
    with ``baselines`` (computed here when not given: pass a cached :func:`probing_baselines` of the same width and
    architecture to share it across a sweep)."""
    if baselines is None:
        baselines = probing_baselines(store, data, dictionary.cfg, options, progress)
    codes = pooled_codes(dictionary, store, data, options, progress)
    sae = _probe_family(
        codes,
        data.tasks,
        options,
        f"SAE latents: {dictionary.cfg.activation}, d_sae {dictionary.cfg.d_sae}",
        True,
        options.full_probes,
        progress,
    )
    return SparseProbingResult(
        store=str(data.store),
        module=data.module,
        dataset_name=data.dataset_name,
        ks=list(options.ks),
        n_texts=int(data.texts.size),
        n_train_texts=int(data.train.size),
        n_test_texts=int(data.test.size),
        classes=data.class_names,
        skipped_classes=data.skipped_classes,
        sae=sae,
        baselines=baselines,
    )


def markdown_table(result: SparseProbingResult) -> str:
    """Mean held-out accuracy over the classes: rows k (and "all" for the full-width probes), columns the SAE's
    k-sparse probe, a random SAE's, the first k principal components, the top-k raw channels and the dense probe on
    all raw dims (the same in every row: the ceiling a linear probe reaches)."""

    def fmt(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    b = result.baselines
    dense = b.llm.mean(None)
    lines = [
        "| k | SAE | random SAE | PCA-k | raw top-k | dense probe |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for k in result.ks:
        row = [result.sae.mean(k), b.random_sae.mean(k), b.pca.mean(k), b.llm.mean(k), dense]
        lines.append(f"| {k} | " + " | ".join(fmt(v) for v in row) + " |")
    lines.append(f"| all | {fmt(result.sae.mean(None))} | {fmt(b.random_sae.mean(None))} | – | – | {fmt(dense)} |")
    caption = (
        f"Mean held-out accuracy over {len(result.classes)} one-vs-rest tasks ({result.n_train_texts} train / "
        f"{result.n_test_texts} test texts of {result.dataset_name})."
    )
    return caption + "\n\n" + "\n".join(lines) + "\n"


class SparseProbingStores(BaseModel):
    """k-sparse probing of one SAE on several labelled stores (SAEBench's several datasets): its metrics are the
    means over the stores, as SAEBench averages over its datasets, and its details one entry per store."""

    stores: list[SparseProbingResult]

    def saebench_metrics(self) -> dict[str, dict[str, float | int | None]]:
        per_store = [r.saebench_metrics() for r in self.stores]
        out: dict[str, dict[str, float | int | None]] = {}
        for category, metrics in per_store[0].items():
            out[category] = {}
            for name in metrics:
                values = [m[category].get(name) for m in per_store]
                present = [float(v) for v in values if v is not None]
                out[category][name] = float(np.mean(present)) if len(present) == len(values) else None
        return out

    def saebench_details(self) -> list[dict[str, object]]:
        return [detail for r in self.stores for detail in r.saebench_details()]

    def saebench_unstructured(self) -> dict[str, object]:
        return {key: value for r in self.stores for key, value in r.saebench_unstructured().items()}

    def markdown(self) -> str:
        """One :func:`markdown_table` per store."""
        return "\n".join(f"**k-sparse probing on {r.dataset_name}**\n\n{markdown_table(r)}" for r in self.stores)
