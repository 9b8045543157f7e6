"""Saving matplotlib figures headless, and the shared palette.

Figures are drawn on `matplotlib.figure.Figure` (no pyplot): `Figure.savefig` renders PNG through the Agg canvas on
its own, so figures work headless and leave whatever backend the caller (e.g. a notebook) chose untouched.
"""

from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from dictlab.files.atomic import atomic_path

DEFAULT_DPI = 120
PALETTE = matplotlib.colormaps["tab10"]


def save_figure(fig: Figure, path: str | Path, dpi: int = DEFAULT_DPI) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically (parents created) and return the path; the suffix must be
    ``.png``."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figure path must end in .png, got {path}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path
