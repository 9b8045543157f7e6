"""Plug-in activations σ for the sparse dictionary, and their registry.

Every activation satisfies σ(z)_i ∈ {0, z_i} (Tang et al., arXiv 2512.05534, Eq. 10), owns its loss terms and
declares its capabilities (uses k, has a sparsity penalty, has a sparse path, has an inference threshold). The
built-ins register on import; a plug-in subclasses :class:`Activation` and applies :func:`register_activation`.
"""

from dictlab.models.activations.base import Activation, PrefixDecoder, scatter_top, squared_error
from dictlab.models.activations.registry import (
    activation_class,
    activation_names,
    register_activation,
    unregister_activation,
)
from dictlab.models.activations.relu import JumpReLU, ReLU
from dictlab.models.activations.topk import BatchTopK, Matryoshka, TopK, batch_top_indices

__all__ = [
    "Activation",
    "BatchTopK",
    "JumpReLU",
    "Matryoshka",
    "PrefixDecoder",
    "ReLU",
    "TopK",
    "activation_class",
    "activation_names",
    "batch_top_indices",
    "register_activation",
    "scatter_top",
    "squared_error",
    "unregister_activation",
]
