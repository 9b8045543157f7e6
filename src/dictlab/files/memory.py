"""Refuse an allocation that cannot fit before making it: a clear error instead of an allocator crash."""

import os

ALLOCATION_LIMIT_ENV = "DICTLAB_MEMORY_LIMIT_GIB"
"""Environment variable that overrides the memory dictlab assumes it may use (GiB)."""


class AllocationTooLarge(ValueError):
    """A size field asks for more memory than the machine has."""


def memory_limit_bytes() -> int:
    """Memory an allocation may use: ``$DICTLAB_MEMORY_LIMIT_GIB`` if set, else the machine's physical memory."""
    override = os.environ.get(ALLOCATION_LIMIT_ENV)
    if override:
        try:
            return int(float(override) * 2**30)
        except ValueError as err:
            raise ValueError(f"{ALLOCATION_LIMIT_ENV}={override!r} is not a number of GiB") from err
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_allocation(n_bytes: int | float, what: str) -> None:
    """Raise :class:`AllocationTooLarge` naming ``what`` when ``n_bytes`` exceeds :func:`memory_limit_bytes`."""
    limit = memory_limit_bytes()
    if n_bytes > limit:
        raise AllocationTooLarge(
            f"{what} needs {_gib(n_bytes)} of memory, more than the {_gib(limit)} this machine has "
            f"(set {ALLOCATION_LIMIT_ENV} to change the limit)"
        )


def _gib(n_bytes: int | float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"
