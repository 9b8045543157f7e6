"""Known ground-truth feature directions of a synthetic dataset, and their safetensors file format."""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from dictlab.files.tensors import save_safetensors

_FORMAT_TAG = "dictlab.GroundTruth/1"


def _tensor_digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and raw bytes of CPU tensors, in sorted name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground-truth features, row-wise (row i = unit vector of feature i).

    features_in:  [n, d_in]  directions an encoder row (``W_enc.T``) on the input side should match.
    features_out: [n, d_out] directions a decoder row (``W_dec``) on the target side should match.
    parents:      int64 [n] or None; parents[i] = index of feature i's parent, −1 if it has none.
    meta:         JSON-safe dict (generator config, seeds, achieved interference, ...).
    """

    features_in: Tensor
    features_out: Tensor
    parents: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("features_in", "features_out"):
            matrix = getattr(self, name)
            if not isinstance(matrix, Tensor) or matrix.ndim != 2 or not matrix.is_floating_point():
                raise ValueError(f"GroundTruth.{name} must be a 2-D float tensor [n_features, d]")
            if not torch.isfinite(matrix).all():
                raise ValueError(f"GroundTruth.{name} contains NaN or Inf")
        n_features = self.features_in.shape[0]
        if self.features_out.shape[0] != n_features:
            raise ValueError(
                f"GroundTruth feature counts differ: features_in has {n_features} rows, "
                f"features_out {self.features_out.shape[0]}"
            )
        if self.parents is not None:
            parents = self.parents
            if parents.dtype != torch.int64 or parents.shape != (n_features,):
                raise ValueError(
                    f"GroundTruth.parents must be int64 [{n_features}], got {parents.dtype} {tuple(parents.shape)}"
                )
            if ((parents < -1) | (parents >= n_features)).any():
                raise ValueError(f"GroundTruth.parents entries must lie in [-1, {n_features - 1}]")
            if (parents == torch.arange(n_features, device=parents.device)).any():
                raise ValueError("GroundTruth.parents: a feature cannot be its own parent")
        try:
            json.dumps(self.meta, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ValueError(f"GroundTruth.meta must be JSON-serialisable: {error}") from error

    @property
    def n_features(self) -> int:
        return self.features_in.shape[0]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tensors to a safetensors file (atomically), with ``meta`` as JSON in its metadata."""
        tensors = {
            "features_in": self.features_in.detach().cpu().contiguous().clone(),
            "features_out": self.features_out.detach().cpu().contiguous().clone(),
        }
        if self.parents is not None:
            tensors["parents"] = self.parents.detach().cpu().contiguous().clone()
        metadata = {
            "format": _FORMAT_TAG,
            "meta": json.dumps(self.meta, allow_nan=False),
            "sha256": _tensor_digest(tensors),
        }
        save_safetensors(tensors, path, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "GroundTruth":
        """Read a file written by :meth:`save` bit-exactly; FileNotFoundError / ValueError name the file."""
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"ground-truth file not found: {source}")
        try:
            with safe_open(str(source), framework="pt") as handle:
                metadata = handle.metadata() or {}
                keys = set(handle.keys())
                tensors = {key: handle.get_tensor(key) for key in keys}
        except (SafetensorError, OSError, RuntimeError) as error:
            raise ValueError(
                f"cannot read ground-truth file {source}: not a valid safetensors file ({error})"
            ) from error
        if metadata.get("format") != _FORMAT_TAG or not {"features_in", "features_out"} <= keys:
            raise ValueError(
                f"{source} is not a dictlab ground-truth file (format tag {metadata.get('format')!r}, "
                f"tensors {sorted(keys)})"
            )
        if metadata.get("sha256") != _tensor_digest(tensors):
            raise ValueError(f"ground-truth file {source} is corrupt: tensor checksum mismatch")
        try:
            meta = json.loads(metadata.get("meta", "{}"))
        except json.JSONDecodeError as error:
            raise ValueError(f"ground-truth file {source} has corrupt meta JSON: {error}") from error
        try:
            return cls(tensors["features_in"], tensors["features_out"], tensors.get("parents"), meta)
        except ValueError as error:
            raise ValueError(f"ground-truth file {source} holds invalid data: {error}") from error
