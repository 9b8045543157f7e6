"""The class probe on the model's activations and the k-sparse probes on an SAE's codes.

Probe. SAEBench (``adamkarvonen/SAEBench`` 0.6.0, ``sae_bench/evals/absorption/probing.py``,
``train_multi_probe``) trains one-vs-rest logistic regressions for the 26 letters jointly with Adam (BCE with
``pos_weight = n_neg / n_pos``, 50 epochs, weight decay 1e-4) on the words of an 80 % train split, and counts a
word as probe-positive for a class when that class's logit is > 0. dictlab fits the same one-vs-rest logistic
regressions with scikit-learn (L-BFGS to convergence, ``class_weight="balanced"``, L2 strength ``C``) on
standardised activations and folds the standardisation back, so the probe acts on raw activations; the decision
rule (logit > 0) and the split are SAEBench's.

k-sparse probes. SAEBench (``k_sparse_probing.py``, ``train_k_sparse_probes``): an L1-regularised one-vs-rest
probe on the SAE codes of the train words (Adam, L1 decay 0.01 on the mean-over-samples BCE), the k latents with
the largest weights for each class, then a balanced scikit-learn logistic regression on those k codes, scored by
F1 (logit > 0) on the test words. Feature splitting (``add_feature_splits_to_metrics_df``): k grows while the F1
rises by more than ``f1_jump_threshold``; the latents at the last such k are the class's main latents. dictlab fits
the L1 probe with scikit-learn's liblinear at the equivalent strength ``C = 1 / (l1_decay · n_train)``.
"""

import numpy as np
import scipy.sparse as sp
import torch
from pydantic import BaseModel, Field
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from torch import Tensor


def precision_recall_f1(truth: np.ndarray, said: np.ndarray) -> tuple[float, float, float]:
    """Binary precision, recall and F1 (0 where undefined, as scikit-learn's ``zero_division=0``)."""
    tp = float(np.sum(truth & said))
    precision = tp / float(said.sum()) if said.any() else 0.0
    recall = tp / float(truth.sum()) if truth.any() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


class ClassProbeStats(BaseModel):
    """The probe on one class, on the test words (decision: that class's logit > 0, as SAEBench)."""

    name: str
    n_train: int
    n_test: int
    f1: float = Field(description="F1 of 'logit > 0' against 'the word is in the class' (SAEBench's f1_probe).")
    precision: float
    recall: float
    accuracy: float = Field(description="Share of the class's test words whose largest logit is this class.")


class ProbeReport(BaseModel):
    """How well the probe reads the class from the model's activations, on held-out words."""

    n_train: int
    n_test: int
    top1_accuracy: float = Field(description="Share of test words whose largest logit is their class.")
    majority_baseline: float = Field(description="top-1 accuracy of always answering the largest test class.")
    mean_f1: float = Field(description="Mean over classes of the one-vs-rest F1.")
    classes: list[ClassProbeStats]


class LinearProbe(BaseModel):
    """One-vs-rest logistic regressions on raw activations: logits = x·weightᵀ + bias."""

    weight: list[list[float]] = Field(description="[n_classes, d] rows in raw activation units.")
    bias: list[float]

    def tensors(self) -> tuple[Tensor, Tensor]:
        """(weight [C, d], bias [C]) as float32 tensors."""
        return torch.tensor(self.weight, dtype=torch.float32), torch.tensor(self.bias, dtype=torch.float32)

    def logits(self, x: Tensor) -> Tensor:
        """[n, C] for activations x [n, d]."""
        weight, bias = self.tensors()
        return x.float() @ weight.T + bias


def fit_probe(x: Tensor, labels: Tensor, n_classes: int, C: float = 1.0, seed: int = 0) -> LinearProbe:
    """One-vs-rest logistic regressions on x [n, d] for labels [n] in 0..n_classes−1 (every class present)."""
    X = x.double().numpy()
    y = labels.numpy()
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (X - mean) / scale
    weights, biases = [], []
    for c in range(n_classes):
        target = (y == c).astype(np.int64)
        if target.min() == target.max():
            raise ValueError(f"probe class {c} has {'all' if target.min() else 'no'} training words")
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000, random_state=seed).fit(Z, target)
        w = model.coef_[0] / scale
        weights.append(w.tolist())
        biases.append(float(model.intercept_[0] - w @ mean))
    return LinearProbe(weight=weights, bias=biases)


def probe_report(probe: LinearProbe, x: Tensor, labels: Tensor, train: Tensor, class_names: list[str]) -> ProbeReport:
    """Test-split statistics of ``probe`` (x [n, d], labels [n], train [n] bool)."""
    test = ~train
    logits = probe.logits(x[test]).numpy()
    y = labels[test].numpy()
    top1 = logits.argmax(axis=1)
    classes = []
    for c, name in enumerate(class_names):
        truth, said = y == c, logits[:, c] > 0
        precision, recall, f1 = precision_recall_f1(truth, said)
        classes.append(
            ClassProbeStats(
                name=name,
                n_train=int((labels[train] == c).sum()),
                n_test=int(truth.sum()),
                f1=f1,
                precision=precision,
                recall=recall,
                accuracy=float((top1[truth] == c).mean()) if truth.any() else 0.0,
            )
        )
    counts = np.bincount(y, minlength=len(class_names))
    return ProbeReport(
        n_train=int(train.sum()),
        n_test=int(test.sum()),
        top1_accuracy=float((top1 == y).mean()) if len(y) else 0.0,
        majority_baseline=float(counts.max() / max(len(y), 1)),
        mean_f1=float(np.mean([s.f1 for s in classes])),
        classes=classes,
    )


class KSparseProbe(BaseModel):
    """The k-sparse probes of one class and the main latents they give."""

    latents: list[int] = Field(description="The max_k latents with the largest L1-probe weights, best first.")
    f1: list[float] = Field(description="Test F1 of the probe on the first k latents, for k = 1 … max_k.")
    main_latents: list[int] = Field(description="The latents at the last k whose F1 rose by more than the jump.")


def _codes_matrix(codes: Tensor) -> sp.csr_array:
    return sp.csr_array(codes.double().numpy())


def k_sparse_probes(
    codes_train: Tensor,
    y_train: Tensor,
    codes_test: Tensor,
    y_test: Tensor,
    n_classes: int,
    max_k: int = 10,
    l1_decay: float = 0.01,
    f1_jump_threshold: float = 0.03,
    seed: int = 0,
) -> list[KSparseProbe]:
    """k-sparse probes of every class on SAE codes (train [n, K], test [m, K]); see the module docstring."""
    import warnings

    A_train, A_test = _codes_matrix(codes_train), _codes_matrix(codes_test)
    ytr, yte = y_train.numpy(), y_test.numpy()
    out = []
    for c in range(n_classes):
        target = (ytr == c).astype(np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            l1 = LogisticRegression(
                l1_ratio=1.0,
                solver="liblinear",
                C=1.0 / (l1_decay * len(ytr)),
                class_weight="balanced",
                max_iter=1000,
                random_state=seed,
            ).fit(A_train, target)
        order = np.argsort(-l1.coef_[0], kind="stable")[:max_k]
        f1s: list[float] = []
        truth = yte == c
        for k in range(1, len(order) + 1):
            feats = order[:k]
            Xk = A_train[:, feats].toarray()
            if Xk.max() == Xk.min():  # the latents never fire on the train words: the probe answers a constant
                said = np.zeros(len(yte), dtype=bool)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    sparse = LogisticRegression(max_iter=500, class_weight="balanced").fit(Xk, target)
                said = sparse.decision_function(A_test[:, feats].toarray()) > 0
            f1s.append(precision_recall_f1(truth, said)[2])
        main: list[int] = []
        best = -100.0
        for k, score in enumerate(f1s, start=1):
            if score > best + f1_jump_threshold:
                best, main = score, [int(i) for i in order[:k]]
            else:
                break
        out.append(KSparseProbe(latents=[int(i) for i in order], f1=f1s, main_latents=main))
    return out
