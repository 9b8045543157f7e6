"""Name the modules of a model whose outputs are captured or replaced.

A pattern is a module name as ``model.named_modules()`` prints it (``model.layers.15``), optionally with shell
wildcards (``model.layers.*.mlp``), or the shorthand ``layer:N`` for the output of transformer block N
(the residual stream after block N) in any model whose blocks form the usual ``layers``/``layer``/``h`` list.
"""

import fnmatch
import re

from torch import Tensor, nn

_BLOCK_LISTS = ("model.layers", "encoder.layer", "transformer.h", "gpt_neox.layers", "layers", "h")


def block_list_name(model: nn.Module) -> str:
    """Name of the ModuleList holding the transformer blocks (e.g. ``model.layers`` for Llama)."""
    names = dict(model.named_modules())
    for candidate in _BLOCK_LISTS:
        if isinstance(names.get(candidate), nn.ModuleList):
            return candidate
    for name, module in names.items():  # wrapped models: bert.encoder.layer, base_model.model.layers, ...
        if isinstance(module, nn.ModuleList) and any(name.endswith("." + c) for c in _BLOCK_LISTS):
            return name
    raise ValueError(f"cannot find the transformer blocks of {type(model).__name__}; name modules explicitly")


def resolve_modules(model: nn.Module, patterns: list[str] | tuple[str, ...]) -> list[str]:
    """Module names matched by ``patterns``, in the order given (each pattern's matches in model order).

    Raises ValueError naming a pattern that matches nothing, with a few valid names as a hint.
    """
    if not patterns:
        raise ValueError("no module pattern given")
    names = [name for name, _ in model.named_modules() if name]
    resolved: list[str] = []
    for pattern in patterns:
        match = re.fullmatch(r"layer:(-?\d+)", pattern.strip())
        if match:
            blocks = block_list_name(model)
            count = len(list(model.get_submodule(blocks).children()))
            index = int(match.group(1))
            if not -count <= index < count:
                raise ValueError(f"{pattern!r}: the model has {count} blocks (layer:0 … layer:{count - 1})")
            hits = [f"{blocks}.{index % count}"]
        else:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern.strip())]
        if not hits:
            hint = ", ".join(names[:6])
            raise ValueError(f"module pattern {pattern!r} matches no module of {type(model).__name__} (e.g. {hint})")
        resolved.extend(h for h in hits if h not in resolved)
    return resolved


def output_tensor(output: object) -> Tensor:
    """The hidden-state tensor of a module's output (blocks often return tuples: the first item)."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], Tensor):
        return output[0]
    raise TypeError(f"module output of type {type(output).__name__} holds no tensor to capture")


def replace_output(output: object, tensor: Tensor) -> object:
    """``output`` with its hidden-state tensor replaced by ``tensor`` (same structure)."""
    if isinstance(output, Tensor):
        return tensor
    if isinstance(output, tuple):
        return (tensor, *output[1:])
    if isinstance(output, list):
        return [tensor, *output[1:]]
    raise TypeError(f"cannot replace the output of type {type(output).__name__}")
