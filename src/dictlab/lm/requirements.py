"""A clear error when the optional transformers stack is missing."""

import importlib.util

LM_EXTRA_HINT = 'install the language-model extra: python -m pip install -e ".[lm]" -c constraints.txt'


def require_transformers() -> None:
    """Raise an ImportError naming the extra when transformers is not installed."""
    if importlib.util.find_spec("transformers") is None:
        raise ImportError(f"dictlab.lm needs the transformers package; {LM_EXTRA_HINT}")
