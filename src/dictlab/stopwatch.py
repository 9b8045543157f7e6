"""Wall-clock seconds per named stage of a job."""

import time


class Stopwatch:
    """``lap(name)`` records the seconds since the previous lap (or the start) under ``name``."""

    def __init__(self, digits: int = 3) -> None:
        self.seconds: dict[str, float] = {}
        self._digits = digits
        self._start = time.perf_counter()
        self._lap = self._start

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._lap, self._digits)
        self._lap = now

    @property
    def total(self) -> float:
        return round(time.perf_counter() - self._start, self._digits)
