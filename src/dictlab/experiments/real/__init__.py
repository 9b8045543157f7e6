"""Experiments on real model activations."""
