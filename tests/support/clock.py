"""A clock for code that takes one: its time moves only when the test sets it."""

from __future__ import annotations


class FakeClock:
    """Seconds (monotonic or wall, as the code under test reads them) that the test sets in ``now``."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
