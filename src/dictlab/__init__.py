"""dictlab: sparse dictionary learning for mechanistic interpretability.

One dictionary family (SAE, transcoder, crosscoder) with plug-in activations (ReLU, JumpReLU, TopK, BatchTopK,
Matryoshka), a trainer with feature anchoring and dead-latent resampling, the Linear Representation Bench with
known ground-truth features, and recovery metrics.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dictlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
