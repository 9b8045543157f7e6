"""Class-mean concept anchors: directions, centring, errors, and the anchors they make."""

import pytest
import torch

from dictlab.models import DictionaryConfig, SparseDictionary
from dictlab.training.concept_anchors import class_mean_anchors, class_mean_directions


def _labelled(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows = shared offset + class direction + noise, 3 classes in 8-d: [300, 8], labels [300], directions [3, 8]."""
    g = torch.Generator().manual_seed(seed)
    directions = torch.linalg.qr(torch.randn(8, 3, generator=g)).Q.T  # orthonormal [3, 8]
    labels = torch.arange(300) % 3
    offset = 5 * torch.ones(8)
    rows = offset + 2 * directions[labels] + 0.05 * torch.randn(300, 8, generator=g)
    return rows, labels, directions


def test_centred_class_means_recover_the_class_directions() -> None:
    rows, labels, directions = _labelled()
    found = class_mean_directions(rows, labels, 3, centered=True)
    torch.testing.assert_close(found.norm(dim=1), torch.ones(3))
    # Centring removes the shared offset: what is left is each class direction minus the mean of the directions.
    expected = directions - directions.mean(dim=0)
    expected = expected / expected.norm(dim=1, keepdim=True)
    assert (found * expected).sum(dim=1).min() > 0.99
    raw = class_mean_directions(rows, labels, 3, centered=False)
    assert (raw @ raw.T).min() > 0.8  # without centring every class points along the shared offset


def test_errors_name_the_problem() -> None:
    rows, labels, _ = _labelled()
    with pytest.raises(ValueError, match="no rows"):
        class_mean_directions(rows, labels, 4)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        class_mean_directions(rows, labels, 2)
    with pytest.raises(ValueError, match="labels"):
        class_mean_directions(rows, labels[:-1], 3)
    bad = rows.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        class_mean_directions(bad, labels, 3)


def test_anchors_pull_the_first_latents_to_the_chosen_classes() -> None:
    rows, labels, _ = _labelled()
    directions = class_mean_directions(rows, labels, 3)
    anchors = class_mean_anchors(directions, [2, 0])
    assert anchors.k == 2 and anchors.feature_ids.tolist() == [2, 0]
    torch.testing.assert_close(anchors.directions_out, directions[[2, 0]])
    anchors.check_fits(SparseDictionary(DictionaryConfig(d_in=8, d_out=8, d_sae=16, activation="topk", k=2)))
    with pytest.raises(ValueError, match="distinct"):
        class_mean_anchors(directions, [1, 1])
