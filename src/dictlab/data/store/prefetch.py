"""Load the next value of a keyed sequence in a background thread while the caller uses the current one."""

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

THREAD_NAME = "dictlab-prefetch"
"""Name prefix of the background threads."""


class Prefetcher(Generic[K, V]):
    """``load(key)`` for the keys a caller asks for in turn; once a key's value is handed out, ``following(key)``
    is loaded ahead in one background thread (none when ``enabled`` is False: every load runs in the caller).

    ``load`` must be a pure function of its key, safe to run beside the caller, so a value is the same whether it
    was prefetched or not; a key other than the one loaded ahead (a jump, e.g. on resume) is loaded afresh. One
    load runs at a time and one value waits at most, so the caller's value and the next are all that exist at
    once. A load's exception is raised, unchanged, by the :meth:`get` that asks for its key. :meth:`close` ends
    the thread; a later :meth:`get` starts a new one.
    """

    def __init__(self, load: Callable[[K], V], following: Callable[[K], K], enabled: bool = True) -> None:
        self._load = load
        self._following = following
        self._enabled = enabled
        self._pool: ThreadPoolExecutor | None = None
        self._ahead: tuple[K, Future[V]] | None = None

    def get(self, key: K) -> V:
        """``load(key)``, then the following key starts loading in the background."""
        if not self._enabled:
            return self._load(key)
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] != key:
            ahead[1].cancel()  # not started yet: dropped; under way: the new load queues behind it
            ahead = None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
        future = ahead[1] if ahead is not None else self._pool.submit(self._load, key)
        value = future.result()
        following = self._following(key)
        self._ahead = (following, self._pool.submit(self._load, following))
        return value

    def close(self) -> None:
        """End the background thread, after the load under way if any (its value is dropped)."""
        self._ahead = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
