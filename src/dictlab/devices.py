"""Check a ``--device`` name before any work: a clear error instead of torch's assertion deep in a run."""

import os

import torch


def check_device(name: str) -> torch.device:
    """The torch device ``name`` (cpu, cuda, cuda:N, mps) if this build and machine have it; else ValueError.

    Under ``torchrun``, a bare ``cuda`` means this process's GPU, ``cuda:$LOCAL_RANK``.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"--device {name!r} is not a device name (cpu, cuda, cuda:N, mps)") from err
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"--device {name}: {build}; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name!r}: dictlab runs on cpu, cuda or mps")
    return device
