"""Concept anchors from labels (Tang et al. §4, the CLIP/ImageNet protocol): normalised class-mean directions.

A class mean of real activations is dominated by the mean of all activations, which every class shares; by default
that shared mean is subtracted first, so each anchor points where its class differs from the rest.
"""

import torch
from torch import Tensor

from dictlab.training.anchoring import Anchors


def class_mean_directions(rows: Tensor, labels: Tensor, n_classes: int, centered: bool = True) -> Tensor:
    """Unit class-mean directions: [n_classes, d] from rows [n, d] and integer labels [n].

    Args:
        centered: subtract the mean of the class means before normalising (each class weighs the same).

    Raises ValueError for mismatched shapes, labels out of range, a class without rows, or NaN/Inf rows.
    """
    if rows.dim() != 2 or labels.shape != (rows.shape[0],):
        raise ValueError(f"need rows [n, d] and labels [n], got {list(rows.shape)} and {list(labels.shape)}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got range [{labels.min()}, {labels.max()}]")
    if not torch.isfinite(rows).all():
        raise ValueError("rows contain NaN or Inf")
    data = rows.double()
    sums = torch.zeros(n_classes, rows.shape[1], dtype=torch.float64).index_add_(0, labels.long(), data)
    counts = torch.bincount(labels.long(), minlength=n_classes)
    empty = (counts == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"classes {empty} have no rows")
    means = sums / counts.unsqueeze(1)
    if centered:
        means = means - means.mean(dim=0, keepdim=True)
    norms = means.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError("a class mean is zero after centring; it has no direction")
    return (means / norms).to(rows.dtype)


def class_mean_anchors(directions: Tensor, classes: list[int]) -> Anchors:
    """Anchors for an SAE: latent i is pulled to class ``classes[i]``'s direction (encoder and decoder).

    ``feature_ids`` hold the class indices, so recovery metrics can leave the anchored classes out.
    """
    if len(set(classes)) != len(classes):
        raise ValueError(f"anchored classes must be distinct, got {classes}")
    index = torch.as_tensor(classes, dtype=torch.long)
    chosen = directions[index]
    return Anchors(chosen.clone(), chosen.clone(), index)
