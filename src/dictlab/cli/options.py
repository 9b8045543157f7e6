"""Build click options from a pydantic model, so a config's field descriptions are the CLI help."""

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import click
from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def _click_type(annotation: Any) -> tuple[Any, bool]:
    """(click type, is_flag) for a field annotation; Literals become choices, tuples comma-separated strings."""
    if get_origin(annotation) is tuple:
        return str, False  # comma-separated, split by model_from_options
    args = [a for a in get_args(annotation) if a is not type(None)]
    base = args[0] if args and annotation not in (bool, int, float, str, Path) else annotation
    if base is bool:
        return bool, True
    if base is Path:
        return click.Path(path_type=Path), False
    if base in (int, float, str):
        return base, False
    if get_origin(base) is Literal:
        return click.Choice([str(choice) for choice in get_args(base)]), False
    return str, False


def options_from_model(
    model: type[BaseModel], overrides: dict[str, dict[str, Any]] | None = None, exclude: tuple[str, ...] = ()
) -> Callable[[F], F]:
    """Decorator adding one ``--field-name`` option per field of ``model`` (help = the field's description).

    Fields in ``exclude`` are left out (e.g. those taken as positional arguments).
    """
    overrides = overrides or {}

    def decorate(func: F) -> F:
        for name, field in reversed(model.model_fields.items()):
            if name in exclude:
                continue
            click_type, is_flag = _click_type(field.annotation)
            flag = "--" + name.replace("_", "-")
            kwargs: dict[str, Any] = {"help": field.description, "show_default": True}
            if field.is_required():
                kwargs.update(type=click_type, required=True)
                func = click.option(flag, name, **{**kwargs, **overrides.get(name, {})})(func)
                continue
            default = field.get_default(call_default_factory=True)
            if is_flag:
                decls = [f"{flag}/--no-{name.replace('_', '-')}"]
                kwargs.update(default=default)
            else:
                decls = [flag]
                if isinstance(default, tuple):
                    default = ",".join(map(str, default))
                kwargs.update(type=click_type, default=default)
            kwargs.update(overrides.get(name, {}))
            func = click.option(*decls, name, **kwargs)(func)
        return func

    return decorate


def model_from_options(model: type[M], values: dict[str, Any]) -> M:
    """Validate CLI values into ``model``; comma-separated strings become tuples for tuple fields.

    Options left at their defaults are not passed, so ``model_fields_set`` holds exactly the options the user gave
    (validators use it to refuse options that do not apply).
    """
    context = click.get_current_context(silent=True)
    parsed = {}
    for name, value in values.items():
        if context is not None and context.get_parameter_source(name) is click.core.ParameterSource.DEFAULT:
            continue
        field = model.model_fields[name]
        if isinstance(value, str) and "tuple" in str(field.annotation):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        parsed[name] = value
    return model.model_validate(parsed)
