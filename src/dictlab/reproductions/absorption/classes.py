"""The label-based absorption metric's data on the bench: points with exactly one active planted parent, labelled by
that parent, and the parent probe trained on them."""

import torch
from torch import Tensor

from dictlab.evals.absorption.probe import fit_probe, probe_report
from dictlab.evals.absorption.words import WordClassData
from dictlab.stopwatch import Stopwatch

TRAIN_FRACTION = 0.8
"""Share of the labelled points the parent probe trains on (SAEBench's word split)."""


def planted_class_data(X: Tensor, codes: Tensor, parents: Tensor, seed: int) -> WordClassData:
    """One class per planted parent: the points X [N, D] (true codes [N, F]) where exactly that parent is active.

    The "words" are point indices and there are no prompts; the probe is SAEBench's one-vs-rest logistic probe on
    the points' activations, trained on a seeded 80 % split."""
    clock = Stopwatch()
    parent_ids = parents[parents >= 0].unique()
    active = codes[:, parent_ids] > 0  # [N, P]
    single = active.sum(dim=1) == 1
    rows = single.nonzero().flatten()
    labels = active[rows].long().argmax(dim=1)
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))
    rows, labels = rows[order], labels[order]
    train = torch.arange(len(rows)) < int(len(rows) * TRAIN_FRACTION)
    x = X[rows]
    names = [f"parent {int(p)}" for p in parent_ids]
    probe = fit_probe(x[train], labels[train], len(names), seed=seed)
    return WordClassData(
        task="planted hierarchy",
        model="bench",
        module="input",
        template="",
        class_names=names,
        words=[f"point {int(r)}" for r in rows],
        labels=labels,
        train=train,
        prompts=[],
        positions=torch.empty(0, dtype=torch.long),
        token_ids=torch.empty(0, dtype=torch.long),
        activations=x,
        probe=probe,
        probe_report=probe_report(probe, x, labels, train, names),
        seconds=clock.total,
    )
