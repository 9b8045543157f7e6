"""Pydantic validation errors as one readable line (for files: field paths; for the CLI: option names)."""

from pydantic import ValidationError


def validation_message(err: ValidationError, as_options: bool = False) -> str:
    """Each error as ``field: what is wrong (got value)``, joined by ``; `` on one line.

    ``as_options`` names top-level fields as CLI options (``--batch-size``) instead of ``batch_size``.
    """
    parts = []
    for error in err.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        loc = [str(p) for p in error["loc"]]
        if not loc:
            parts.append(message)
            continue
        head = "--" + loc[0].replace("_", "-") if as_options else loc[0]
        field = head + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, int | float | str | bool) and len(repr(value)) <= 80 else ""
        parts.append(f"{field}: {message}{shown}")
    return "; ".join(parts)
