"""Keep freed memory in the process on glibc, so a CPU training step's large tensors do not page-fault afresh.

glibc serves every allocation above 32 MiB with a fresh ``mmap`` and returns it with ``munmap`` when freed, so each
[batch, d_sae] tensor of every step (50 MiB at 4096 × 3072) is faulted in and zeroed page by page by the kernel:
an elementwise pass over it is much slower than over reused memory, and so is the whole training step. With mmap
disabled and trimming off, freed blocks stay in the heap and the next step reuses them. The price: the process
keeps its peak memory until it exits. PyTorch's own advice for CPU training (jemalloc or tcmalloc via LD_PRELOAD)
has the same effect but must be set up before Python starts.
"""

import ctypes
import ctypes.util
import sys
from functools import cache

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


@cache
def retain_freed_memory() -> bool:
    """Apply the glibc settings once per process; False where they do not apply (not Linux/glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
