"""A map that forgets: entries go after a while unused, and the least recently used past a size.

A server that runs for weeks meets more tenants and tasks than it should remember. What it keeps
per tenant or per task only to save work (a key for the poller, a rate limiter, the last state
written) can be dropped and rebuilt on the next use; :class:`IdleMap` is where such things live.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdleMap(Generic[K, V]):
    """A dict whose entries are dropped ``idle_s`` seconds (on ``clock``) after their last use, and
    the least recently used one whenever there are more than ``max_size``.

    ``busy`` (optional) says an entry must stay whatever its age, e.g. a limiter with requests
    queued; it counts as used now. Reads and writes both count as use. Dropping happens on each
    write, and a read of an entry past its time finds nothing, so no timer is needed.
    """

    def __init__(
        self,
        *,
        idle_s: float,
        max_size: int,
        clock: Callable[[], float] = time.monotonic,
        busy: Callable[[V], bool] | None = None,
    ) -> None:
        self.idle_s = idle_s
        self.max_size = max_size
        self._clock = clock
        self._busy = busy
        self._items: OrderedDict[K, tuple[V, float]] = OrderedDict()  # oldest use first

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def values(self) -> Iterator[V]:
        """The entries held now (without counting as use)."""
        return (value for value, _ in tuple(self._items.values()))

    def get(self, key: K) -> V | None:
        """The entry, or None when there is none (or it was idle too long, and is dropped now)."""
        item = self._items.get(key)
        if item is None:
            return None
        value, used = item
        now = self._clock()
        if now - used >= self.idle_s and not self._is_busy(value):
            del self._items[key]
            return None
        self._items[key] = (value, now)
        self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key`` (used now), then drop what is idle or too many."""
        now = self._clock()
        self._items[key] = (value, now)
        self._items.move_to_end(key)
        self.sweep(now)

    def pop(self, key: K) -> V | None:
        """Drop an entry now; returns it, or None."""
        item = self._items.pop(key, None)
        return None if item is None else item[0]

    def sweep(self, now: float | None = None) -> int:
        """Drop every entry idle for ``idle_s`` and the oldest past ``max_size``; returns how many went.

        Looks only at the oldest entries: the cost is what is dropped (plus busy ones passed over).
        """
        now = self._clock() if now is None else now
        dropped = 0
        passed = 0  # busy entries moved to the back, at most one round of them
        while self._items and passed < len(self._items):
            key, (value, used) = next(iter(self._items.items()))
            if len(self._items) <= self.max_size and now - used < self.idle_s:
                break
            if self._is_busy(value):
                self._items[key] = (value, now)
                self._items.move_to_end(key)
                passed += 1
                continue
            del self._items[key]
            dropped += 1
        return dropped

    def _is_busy(self, value: V) -> bool:
        return self._busy is not None and self._busy(value)
