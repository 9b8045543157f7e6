"""Feature anchoring (Tang et al., §4): pull the first k latents towards known feature directions.

L_anchor = ‖W_E[1:k, :] − [w̃_p]ᵀ‖²_F + ‖W_D[:, 1:k] − [w̃_r]‖²_F in the paper's orientation, which is
‖W_enc[:, :k]ᵀ − A_in‖²_F + ‖W_dec[:k] − A_out‖²_F in dictlab's. It is a soft squared penalty, not divided by k,
added to the training loss with weight λ_anchor. Latent i (i < k) is anchored to ground-truth feature
``feature_ids[i]``; metrics exclude those features.
"""

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from dictlab.models.dictionary import SparseDictionary

AnchorTerms = Literal["both", "encoder", "decoder"]


@dataclass(frozen=True)
class Anchors:
    """Known directions for the first ``k`` latents.

    Attributes:
        directions_in: [k, d_in] unit directions the encoder columns ``W_enc[:, :k]`` are pulled to.
        directions_out: [k, d_out] unit directions the decoder rows ``W_dec[:k]`` are pulled to.
        feature_ids: [k] ground-truth feature index of each anchor (−1 when the anchor is not a GT feature,
            e.g. a class mean).
    """

    directions_in: Tensor
    directions_out: Tensor
    feature_ids: Tensor

    def __post_init__(self) -> None:
        k = self.directions_in.shape[0]
        if self.directions_in.dim() != 2 or self.directions_out.dim() != 2 or self.directions_out.shape[0] != k:
            raise ValueError(
                "anchors need directions_in [k, d_in] and directions_out [k, d_out] with the same k, got "
                f"{list(self.directions_in.shape)} and {list(self.directions_out.shape)}"
            )
        if self.feature_ids.shape != (k,):
            raise ValueError(f"feature_ids must have shape [{k}], got {list(self.feature_ids.shape)}")
        for name in ("directions_in", "directions_out"):
            if not torch.isfinite(getattr(self, name)).all():
                raise ValueError(f"anchor {name} contains NaN or Inf")

    @property
    def k(self) -> int:
        return self.directions_in.shape[0]

    def check_fits(self, model: SparseDictionary) -> None:
        """Raise if these anchors cannot be applied to ``model``."""
        cfg = model.cfg
        if self.k > cfg.d_sae:
            raise ValueError(f"{self.k} anchors exceed d_sae = {cfg.d_sae}")
        if self.directions_in.shape[1] != cfg.d_in or self.directions_out.shape[1] != cfg.d_out:
            raise ValueError(
                f"anchor widths ({self.directions_in.shape[1]}, {self.directions_out.shape[1]}) do not match the "
                f"dictionary's (d_in={cfg.d_in}, d_out={cfg.d_out})"
            )

    def to(self, device: str | torch.device) -> "Anchors":
        return Anchors(self.directions_in.to(device), self.directions_out.to(device), self.feature_ids.to(device))


def anchor_loss(model: SparseDictionary, anchors: Anchors, terms: AnchorTerms = "both") -> Tensor:
    """Unweighted L_anchor of ``model`` (a scalar): the paper's two terms, or only the encoder or decoder one.

    On a latent shard, the part of the anchored latents this process holds (the shards' values sum to the whole).
    """
    if terms not in ("both", "encoder", "decoder"):
        raise ValueError(f"unknown anchor terms {terms!r}; choose both, encoder or decoder")
    k = model.local_prefix(anchors.k)
    first = model.latents.start
    loss = model.W_enc.new_zeros(())
    if terms in ("both", "encoder"):
        loss = loss + (model.W_enc[:, :k].T - anchors.directions_in[first : first + k]).pow(2).sum()
    if terms in ("both", "decoder"):
        loss = loss + (model.W_dec[:k] - anchors.directions_out[first : first + k]).pow(2).sum()
    return loss
