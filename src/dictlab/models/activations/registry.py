"""The activation registry: one place that knows every activation's name and capabilities.

Registering an activation class makes it a valid ``DictionaryConfig.activation``, a ``dictlab bench`` method and a
``dictlab train --activation`` choice; every name list and capability test in dictlab is derived from here.
"""

from typing import Annotated, TypeVar

from pydantic import AfterValidator

from dictlab.models.activations.base import Activation

A = TypeVar("A", bound=type[Activation])

_REGISTRY: dict[str, type[Activation]] = {}


def register_activation(cls: A) -> A:
    """Class decorator: add ``cls`` to the registry under ``cls.name`` (names are unique)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"activation class {cls.__name__} must set a non-empty str 'name'")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"activation {name!r} is already registered ({_REGISTRY[name].__qualname__})")
    _REGISTRY[name] = cls
    return cls


def unregister_activation(name: str) -> None:
    """Remove ``name`` from the registry (for plug-ins registered temporarily, e.g. in tests)."""
    _REGISTRY.pop(name, None)


def activation_class(name: str) -> type[Activation]:
    """The registered class called ``name``; ValueError listing the registered names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; registered: {', '.join(_REGISTRY)}") from None


def activation_names(
    *,
    uses_k: bool | None = None,
    has_sparsity_penalty: bool | None = None,
    has_sparse_path: bool | None = None,
    has_inference_threshold: bool | None = None,
) -> tuple[str, ...]:
    """Registered names in registration order, optionally filtered by capability (None: either)."""
    wanted = {
        "uses_k": uses_k,
        "has_sparsity_penalty": has_sparsity_penalty,
        "has_sparse_path": has_sparse_path,
        "has_inference_threshold": has_inference_threshold,
    }
    return tuple(
        name
        for name, cls in _REGISTRY.items()
        if all(value is None or getattr(cls, flag) == value for flag, value in wanted.items())
    )


def _check_registered(name: str) -> str:
    activation_class(name)  # raises with the registered names
    return name


RegisteredActivation = Annotated[str, AfterValidator(_check_registered)]
"""A pydantic field type: the name of a registered activation."""
