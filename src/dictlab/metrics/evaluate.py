"""Evaluate a trained dictionary against known ground truth: recovery on encoder and decoder, reconstruction."""

from collections.abc import Callable, Iterable, Sequence

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor

from dictlab.metrics.chance import random_dictionary_mip
from dictlab.metrics.matching import mcc, uniqueness
from dictlab.metrics.reconstruction import ReconstructionStats
from dictlab.metrics.recovery import (
    best_match_cosines,
    default_taus,
    feature_subset,
    gt_recovery,
    max_inner_product,
    recovery_curve,
)
from dictlab.models.dictionary import SparseDictionary

PRIMARY_TAU = 0.95
SECONDARY_TAU = 0.90


class Evaluation(BaseModel):
    """Ground-truth and reconstruction metrics of one dictionary.

    Recovery metrics cover the non-anchored features only (as in the paper); ``anchored_mip_*`` covers the anchored
    ones. ``*_enc`` compares encoder columns ``W_enc[:, i]`` with the input-side truth (the paper's stated choice),
    ``*_dec`` compares decoder rows ``W_dec[i]`` with the output-side truth. ``mip_chance`` is the MIP that d_sae
    uniformly random directions score against the same non-anchored input-side truth: the floor a MIP is read against.
    """

    model_config = ConfigDict(frozen=True)

    gt_recovery_enc: float
    gt_recovery_dec: float
    mip_enc: float
    mip_dec: float
    gt_recovery_enc_90: float
    gt_recovery_dec_90: float
    anchored_mip_enc: float | None
    anchored_mip_dec: float | None
    mip_chance: float
    mcc: float
    uniqueness: float
    l0: float
    fvu: float
    dead_fraction: float
    curve_taus: list[float]
    curve_enc: list[float]
    curve_dec: list[float]
    best_cos_enc: list[float]
    best_cos_dec: list[float]


def recovery_probe(
    truth_in: Tensor, truth_out: Tensor, anchored_features: Sequence[int] | Tensor = ()
) -> Callable[[SparseDictionary], dict[str, float]]:
    """A training probe (see ``Member.probe``): decoder GT@0.95 and MIP, encoder MIP, over non-anchored features.

    truth_in: [n, d_in], truth_out: [n, d_out] unit ground-truth directions, as for ``evaluate_dictionary``.
    """
    keep = feature_subset(truth_in.shape[0], anchored_features)
    truth_in, truth_out = truth_in[keep.to(truth_in.device)], truth_out[keep.to(truth_out.device)]

    @torch.no_grad()
    def probe(model: SparseDictionary) -> dict[str, float]:
        best_dec = best_match_cosines(model.W_dec.detach(), truth_out.to(model.W_dec.device))
        best_enc = best_match_cosines(model.W_enc.T.detach(), truth_in.to(model.W_enc.device))
        return {
            "gt_recovery_dec": gt_recovery(best_dec, PRIMARY_TAU),
            "mip_dec": max_inner_product(best_dec),
            "mip_enc": max_inner_product(best_enc),
        }

    return probe


@torch.no_grad()
def reconstruction_metrics(
    model: SparseDictionary,
    rows: Tensor | Iterable[Tensor],
    view: Callable[[Tensor], tuple[Tensor, Tensor]],
    batch_size: int = 4096,
) -> dict[str, float]:
    """L0, FVU and dead fraction of ``model`` (eval mode) over ``rows`` mapped through ``view``.

    ``rows`` is one [n, width] tensor (evaluated in batches of ``batch_size``) or an iterable of such blocks
    (e.g. streamed from an activation store), so the data never has to be in memory at once.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    blocks = rows.split(batch_size) if isinstance(rows, Tensor) else rows
    stats = ReconstructionStats()
    for block in blocks:
        x_in, x_out = view(block.to(device))
        codes = model.encode(x_in)
        stats.update(x_out, model.decode(codes), codes)
    model.train(was_training)
    return stats.result()


@torch.no_grad()
def evaluate_dictionary(
    model: SparseDictionary,
    truth_in: Tensor,
    truth_out: Tensor,
    rows: Tensor,
    view: Callable[[Tensor], tuple[Tensor, Tensor]],
    anchored_features: Sequence[int] | Tensor = (),
    batch_size: int = 4096,
) -> Evaluation:
    """All bench metrics of ``model``.

    Args:
        truth_in: [n, d_in] unit ground-truth directions for encoder columns.
        truth_out: [n, d_out] unit ground-truth directions for decoder rows.
        rows: held-out source rows (e.g. LRB codes of the test split) that ``view`` maps to (x_in, x_out).
        anchored_features: GT feature ids used as anchors; excluded from the headline recovery metrics.
    """
    n_features = truth_in.shape[0]
    keep = feature_subset(n_features, anchored_features)
    best_enc_all = best_match_cosines(model.W_enc.T.detach().cpu(), truth_in.cpu())
    best_dec_all = best_match_cosines(model.W_dec.detach().cpu(), truth_out.cpu())
    best_enc, best_dec = best_enc_all[keep], best_dec_all[keep]
    taus, curve_enc = recovery_curve(best_enc, default_taus())
    _, curve_dec = recovery_curve(best_dec, taus)
    anchored = ~keep
    recon = reconstruction_metrics(model, rows, view, batch_size)
    return Evaluation(
        gt_recovery_enc=gt_recovery(best_enc, PRIMARY_TAU),
        gt_recovery_dec=gt_recovery(best_dec, PRIMARY_TAU),
        mip_enc=max_inner_product(best_enc),
        mip_dec=max_inner_product(best_dec),
        gt_recovery_enc_90=gt_recovery(best_enc, SECONDARY_TAU),
        gt_recovery_dec_90=gt_recovery(best_dec, SECONDARY_TAU),
        anchored_mip_enc=max_inner_product(best_enc_all[anchored]) if anchored.any() else None,
        anchored_mip_dec=max_inner_product(best_dec_all[anchored]) if anchored.any() else None,
        mip_chance=random_dictionary_mip(truth_in.cpu()[keep], model.cfg.d_sae),
        mcc=mcc(model.W_dec.detach().cpu(), truth_out.cpu()[keep]),
        uniqueness=uniqueness(model.W_dec.detach().cpu(), truth_out.cpu()[keep]),
        l0=recon["l0"],
        fvu=recon["fvu"],
        dead_fraction=recon["dead_fraction"],
        curve_taus=[round(t, 4) for t in taus.tolist()],
        curve_enc=curve_enc.tolist(),
        curve_dec=curve_dec.tolist(),
        best_cos_enc=best_enc.tolist(),
        best_cos_dec=best_dec.tolist(),
    )
