"""Numeric precision of a training step: fp32, TF32 matmuls (CUDA), or a bfloat16-autocast forward pass."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from dictlab.training.config import Precision


def forward_autocast(precision: Precision, device: torch.device) -> torch.autocast:
    """The autocast context for a forward pass (enabled for bf16 only; backward runs outside it)."""
    return torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")


@contextmanager
def tf32_matmuls(precision: Precision) -> Iterator[None]:
    """Allow TF32 in CUDA matmuls (forward and backward) inside the block when ``precision`` is tf32; no effect
    on CPU. The global flag is restored on exit."""
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = previous or precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
