"""File names read from untrusted files (manifests): plain names inside one folder, never paths."""

import re

_PLAIN = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,199}")


def check_plain_name(name: str, what: str) -> str:
    """Return ``name`` if it is a plain file or folder name: letters, digits, ``_ - .``, at most 200 characters,
    not starting with a dot (so no ``..``, no separators, no absolute or hidden paths); else ValueError."""
    if not isinstance(name, str) or not _PLAIN.fullmatch(name):
        raise ValueError(
            f"{what} {name!r} is not a plain name (letters, digits, '_', '-', '.'; no '/' or '..', not starting "
            "with '.')"
        )
    return name
