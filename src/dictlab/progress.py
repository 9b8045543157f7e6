"""Progress reporting: a tqdm bar on a terminal, a plain line every few seconds anywhere else.

A bar redrawn with carriage returns is right for a terminal and wrong for a log file (SLURM, CI, ``nohup``): there
it turns into thousands of frames. :func:`progress_bar` picks by whether the stream is a terminal; the line form
writes one line when it starts, at most one every ``DICTLAB_PROGRESS_SECONDS`` seconds (default 30) and one at the
end.
"""

import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import IO, Any, Generic, Protocol, Self, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

INTERVAL_ENV = "DICTLAB_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0


class Progress(Protocol[T_co]):
    """What dictlab's loops use of a progress bar (tqdm's interface, a subset)."""

    def __enter__(self) -> "Progress[T_co]": ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Any: ...

    def __iter__(self) -> Iterator[T_co]: ...

    def update(self, n: float = 1) -> Any: ...

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None: ...

    def set_postfix(self, **values: Any) -> None: ...

    def close(self) -> None: ...


class LineProgress(Generic[T]):
    """tqdm's counters and formatting, written as whole lines at most every ``interval`` seconds."""

    def __init__(
        self,
        iterable: Iterable[T] | None = None,
        *,
        total: float | None = None,
        initial: float = 0,
        desc: str = "",
        unit: str = "it",
        unit_scale: bool = False,
        interval: float = DEFAULT_INTERVAL,
        file: IO[str] | None = None,
    ) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total: float | None = total
        self.n, self.initial = initial, initial
        self.desc, self.unit, self.unit_scale = desc, unit, unit_scale
        self.interval = interval
        self.file = file if file is not None else sys.stderr
        self.postfix = ""
        self.start = time.monotonic()
        self.last_line = self.start
        self.closed = False
        self._write()

    def _write(self) -> None:
        elapsed = time.monotonic() - self.start
        done = self.n - self.initial
        line = tqdm.format_meter(
            self.n,
            self.total or 0,
            elapsed,
            prefix=self.desc,
            unit=self.unit,
            unit_scale=self.unit_scale,
            rate=done / elapsed if elapsed > 0 and done else None,
            postfix=self.postfix or None,
            bar_format="{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}]{postfix}"
            if self.total
            else "{desc}: {n_fmt}{unit} [{elapsed}, {rate_fmt}]{postfix}",
        )
        self.file.write(line + "\n")
        self.file.flush()
        self.last_line = time.monotonic()

    def update(self, n: float = 1) -> None:
        """Count ``n`` more; write a line when ``interval`` seconds have passed since the last one."""
        self.n += n
        if time.monotonic() - self.last_line >= self.interval:
            self._write()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Text shown after the counters on the next line."""
        self.postfix = s

    def set_postfix(self, **values: Any) -> None:
        """``key=value`` pairs shown after the counters on the next line."""
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("this progress line wraps no iterable")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def close(self) -> None:
        """Write the final line (once)."""
        if not self.closed:
            self.closed = True
            self._write()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress_bar(
    iterable: Iterable[T] | None = None,
    *,
    total: float | None = None,
    initial: float = 0,
    desc: str = "",
    unit: str = "it",
    unit_scale: bool = False,
    enabled: bool = True,
    file: IO[str] | None = None,
) -> "Progress[T]":
    """A tqdm bar when ``file`` (default: stderr) is a terminal, :class:`LineProgress` otherwise; nothing shown
    when not ``enabled``."""
    stream = file if file is not None else sys.stderr
    if not enabled or stream.isatty():
        return tqdm(  # type: ignore[return-value]
            iterable,
            total=total,
            initial=initial,
            desc=desc,
            unit=unit,
            unit_scale=unit_scale,
            disable=not enabled,
            dynamic_ncols=True,
            leave=False,
            file=stream,
        )
    interval = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    return LineProgress(
        iterable,
        total=total,
        initial=initial,
        desc=desc,
        unit=unit,
        unit_scale=unit_scale,
        interval=interval,
        file=stream,
    )
