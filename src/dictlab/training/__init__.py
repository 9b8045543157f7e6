"""Training: one pass over shared batches updates one or several dictionaries."""

from dictlab.training.anchoring import Anchors, AnchorTerms, anchor_loss
from dictlab.training.batches import BatchSource, ShuffledBatches
from dictlab.training.config import RecipeConfig, TrainConfig
from dictlab.training.dead_latents import FiringTracker, auxk_loss, resample_dead_latents
from dictlab.training.trainer import Member, MemberSummary, Trainer, identity_view, read_training_log

__all__ = [
    "AnchorTerms",
    "Anchors",
    "BatchSource",
    "FiringTracker",
    "Member",
    "MemberSummary",
    "RecipeConfig",
    "ShuffledBatches",
    "TrainConfig",
    "Trainer",
    "anchor_loss",
    "auxk_loss",
    "identity_view",
    "read_training_log",
    "resample_dead_latents",
]
