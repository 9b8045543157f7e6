"""``dictlab capture``: the capture configuration is importable without transformers; running it needs the extra."""

from collections.abc import Callable

from dictlab.data.store import StoreManifest
from dictlab.lm.capture_config import CaptureConfig


def run_capture(config: CaptureConfig, echo: Callable[[str], None] = print) -> StoreManifest:
    """Run or resume the capture described by ``config``."""
    from dictlab.lm.capture import capture

    return capture(config, echo)


__all__ = ["CaptureConfig", "run_capture"]
