"""One sparse-dictionary family with plug-in activations, and its run-folder I/O."""

from dictlab.models.activations import (
    Activation,
    BatchTopK,
    JumpReLU,
    Matryoshka,
    ReLU,
    TopK,
    activation_class,
    activation_names,
    register_activation,
)
from dictlab.models.config import DictionaryConfig, DictionaryKind
from dictlab.models.dictionary import DictionaryLoss, SparseDictionary
from dictlab.models.io import RunFolderError, load_dictionary, read_run_config, save_dictionary
from dictlab.models.saelens import (
    SAELensFormatError,
    is_saelens_folder,
    load_saelens,
    read_saelens_config,
    save_saelens,
)

__all__ = [
    "Activation",
    "BatchTopK",
    "DictionaryConfig",
    "DictionaryKind",
    "DictionaryLoss",
    "JumpReLU",
    "Matryoshka",
    "ReLU",
    "RunFolderError",
    "SAELensFormatError",
    "SparseDictionary",
    "TopK",
    "activation_class",
    "activation_names",
    "is_saelens_folder",
    "load_dictionary",
    "load_saelens",
    "read_run_config",
    "read_saelens_config",
    "register_activation",
    "save_dictionary",
    "save_saelens",
]
