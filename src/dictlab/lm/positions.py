"""Which token positions carry activations worth keeping (capture) or replacing (splicing).

Padding never counts. Special tokens (BOS, CLS, SEP, EOS) are dropped by default, and so are the first
``skip_first`` real positions of every sequence: in causal LMs the first position is an attention sink whose
activation norm is tens of times the typical one (SmolLM2: ≈ 22,500 against ≈ 430), which would dominate any
reconstruction loss. The rules work with either padding side.
"""

import torch
from torch import Tensor


def kept_positions(
    attention_mask: Tensor, special_tokens_mask: Tensor | None = None, skip_first: int = 1, drop_special: bool = True
) -> Tensor:
    """Boolean [batch, seq] mask of positions to keep.

    Args:
        attention_mask: [batch, seq], 1 on real tokens, 0 on padding.
        special_tokens_mask: [batch, seq], 1 on special tokens (the tokenizer's ``return_special_tokens_mask``).
        skip_first: number of leading real positions dropped in every sequence.
        drop_special: drop positions flagged in ``special_tokens_mask``.
    """
    if skip_first < 0:
        raise ValueError(f"skip_first must be >= 0, got {skip_first}")
    real = attention_mask.bool()
    rank = torch.cumsum(real.long(), dim=1) - 1  # index among the real tokens of its sequence
    keep = real & (rank >= skip_first)
    if drop_special and special_tokens_mask is not None:
        keep &= ~special_tokens_mask.bool()
    return keep
