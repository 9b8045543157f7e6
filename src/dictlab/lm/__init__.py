"""Hugging Face transformers integration: load offline models, resolve modules, capture and splice activations.

Everything here needs the optional ``lm`` extra (``pip install -e ".[lm]"``); importing a submodule without it
raises an ImportError that says so.
"""
