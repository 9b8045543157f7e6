"""Activation stores: sharded on-disk activations with a manifest, resumable appends and streamed batches."""

from dictlab.data.store.lanes import LaneBatches
from dictlab.data.store.manifest import StoreError, StoreManifest, read_manifest
from dictlab.data.store.reader import ActivationStore
from dictlab.data.store.streaming import StoreBatches, split_chunks
from dictlab.data.store.writer import StoreWriter

__all__ = [
    "ActivationStore",
    "LaneBatches",
    "StoreBatches",
    "StoreError",
    "StoreManifest",
    "StoreWriter",
    "read_manifest",
    "split_chunks",
]
