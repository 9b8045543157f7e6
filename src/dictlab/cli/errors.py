"""The command line's one error boundary: every failure becomes one line and a non-zero exit status.

``dictlab --debug COMMAND`` (or ``DICTLAB_DEBUG=1``) re-raises instead, with the full traceback.
"""

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from dictlab.validation import validation_message

F = TypeVar("F", bound=Callable[..., None])
DEBUG_ENV = "DICTLAB_DEBUG"


def debug_enabled() -> bool:
    """Whether tracebacks were asked for (``--debug`` on the group or ``DICTLAB_DEBUG`` set to a true value)."""
    context = click.get_current_context(silent=True)
    if context is not None and context.find_root().params.get("debug"):
        return True
    return os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def error_message(err: BaseException) -> str:
    """One line that says what went wrong, for any exception a command can raise."""
    if isinstance(err, ValidationError):
        return validation_message(err, as_options=True)
    if isinstance(err, MemoryError):
        return "out of memory" + (f": {err}" if str(err) else "") + "; use smaller sizes or a larger machine"
    if isinstance(err, ValueError | OSError | LookupError | ArithmeticError | ImportError):
        text = _one_line(str(err)) or type(err).__name__
        return text if isinstance(err, ValueError | OSError) else f"{type(err).__name__}: {text}"
    return (
        f"internal error ({type(err).__name__}: {_one_line(str(err))}); run `dictlab --debug ...` for the traceback "
        "and report it"
    )


def reports_errors(command: F) -> F:
    """Wrap a command so that any exception becomes ``Error: <one line>`` and exit status 1 (unless debugging)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (click.ClickException, click.Abort, KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:
            if debug_enabled():
                raise
            raise click.ClickException(error_message(err)) from err

    return wrapper  # type: ignore[return-value]
