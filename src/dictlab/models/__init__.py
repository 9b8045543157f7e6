"""One sparse-dictionary family with plug-in activations, and its run-folder I/O."""

from dictlab.models.activations import (
    Activation,
    BatchTopK,
    JumpReLU,
    Matryoshka,
    ReLU,
    TopK,
    build_activation,
)
from dictlab.models.config import ActivationName, DictionaryConfig, DictionaryKind
from dictlab.models.dictionary import DictionaryLoss, SparseDictionary
from dictlab.models.io import RunFolderError, load_dictionary, read_run_config, save_dictionary

__all__ = [
    "Activation",
    "ActivationName",
    "BatchTopK",
    "DictionaryConfig",
    "DictionaryKind",
    "DictionaryLoss",
    "JumpReLU",
    "Matryoshka",
    "ReLU",
    "RunFolderError",
    "SparseDictionary",
    "TopK",
    "build_activation",
    "load_dictionary",
    "read_run_config",
    "save_dictionary",
]
