"""A labelled text corpus (texts with one integer class each) and the error raised by corpus loaders."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class CorpusError(ValueError):
    """A corpus is missing or malformed; message names the file/package and how to install it."""


@dataclass(frozen=True)
class LabelledTexts:
    """Texts with one integer class label each.

    ``labels[i]`` indexes ``label_names`` and gives the class of ``texts[i]``. ``labels`` is stored as a fresh
    int64 array (a list or any integer array is accepted); ``texts`` as a list. Construction raises
    :class:`ValueError` for no texts, no or duplicate label names, a length mismatch or a label out of range.
    """

    texts: list[str]
    labels: np.ndarray
    label_names: list[str]
    source: str

    def __post_init__(self) -> None:
        texts = list(self.texts)
        label_names = list(self.label_names)
        raw = np.asarray(self.labels)
        if not texts:
            raise ValueError(f"{self.source}: no texts")
        if not label_names:
            raise ValueError(f"{self.source}: no label names")
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"{self.source}: duplicate label names in {label_names}")
        if raw.ndim != 1 or not np.issubdtype(raw.dtype, np.integer):
            raise ValueError(f"{self.source}: labels must be a 1-D integer array, got {raw.dtype} of shape {raw.shape}")
        if len(raw) != len(texts):
            raise ValueError(f"{self.source}: {len(texts)} texts but {len(raw)} labels")
        bad = np.flatnonzero((raw < 0) | (raw >= len(label_names)))
        if bad.size:
            raise ValueError(
                f"{self.source}: label {raw[bad[0]]} at index {bad[0]} is out of range for {len(label_names)} names"
            )
        if not all(isinstance(text, str) for text in texts):
            raise ValueError(f"{self.source}: every text must be a str")
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "labels", raw.astype(np.int64, copy=True))
        object.__setattr__(self, "label_names", label_names)

    def __len__(self) -> int:
        return len(self.texts)

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, LabelledTexts):
            return NotImplemented
        return (
            self.source == other.source
            and self.label_names == other.label_names
            and self.texts == other.texts
            and np.array_equal(self.labels, other.labels)
        )

    def counts(self) -> dict[str, int]:
        """Number of texts per label name, in ``label_names`` order (zero for an unused name)."""
        per_class = np.bincount(self.labels, minlength=len(self.label_names))
        return {name: int(n) for name, n in zip(self.label_names, per_class, strict=True)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> "LabelledTexts":
        """The texts at ``indices`` (integer positions in the given order, or a boolean mask), same label names."""
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask of shape {idx.shape} for {len(self)} texts")
            idx = np.flatnonzero(idx)
        elif idx.size == 0:
            idx = idx.astype(np.int64)
        elif idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be a 1-D integer sequence or boolean mask, got dtype {idx.dtype}")
        return LabelledTexts(
            texts=[self.texts[i] for i in idx.tolist()],
            labels=self.labels[idx],
            label_names=self.label_names,
            source=self.source,
        )

    def balanced(self, max_per_class: int, seed: int = 0) -> "LabelledTexts":
        """At most ``max_per_class`` texts per class, drawn at random (reproducibly from ``seed``), order kept."""
        if max_per_class < 1:
            raise ValueError(f"max_per_class must be at least 1, got {max_per_class}")
        rng = np.random.default_rng(seed)
        keep = []
        for label in range(len(self.label_names)):
            members = np.flatnonzero(self.labels == label)
            if len(members) > max_per_class:
                members = rng.choice(members, size=max_per_class, replace=False)
            keep.append(members)
        return self.subset(np.sort(np.concatenate(keep)))

    def split(self, test_fraction: float, seed: int = 0) -> tuple["LabelledTexts", "LabelledTexts"]:
        """Stratified random ``(train, test)`` split, reproducible from ``seed``; each side keeps the original order.

        Each class puts ``round(test_fraction * class_size)`` of its texts in the test side, so class proportions
        are kept up to rounding. Raises :class:`ValueError` if either side would be empty.
        """
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
        rng = np.random.default_rng(seed)
        test = []
        for label in range(len(self.label_names)):
            members = np.flatnonzero(self.labels == label)
            n_test = round(test_fraction * len(members))
            test.append(rng.permutation(members)[:n_test])
        is_test = np.zeros(len(self), dtype=bool)
        is_test[np.concatenate(test)] = True
        n_test = int(is_test.sum())
        if n_test in (0, len(self)):
            raise ValueError(
                f"{self.source}: test_fraction={test_fraction} of {len(self)} texts leaves "
                f"{'no test' if n_test == 0 else 'no training'} texts"
            )
        return self.subset(~is_test), self.subset(is_test)
