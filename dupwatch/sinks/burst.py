"""A burst of duplicates becomes one summary alert.

Notices are held until none has come for `quiet` seconds (or the first has waited `window`),
so that a burst is seen whole before anything goes out. The group is then sent as one alert
each, unless that would make more than `count` alerts within `window` seconds: then it goes as
one summary. Times are passed in, so the rule is tested without waiting.
"""

from __future__ import annotations

from collections import deque

from dupwatch.record import Notice
from dupwatch.sinks.base import Alert, Summary


class Burst:
    def __init__(self, count: int, window: float, quiet: float) -> None:
        self.count, self.window, self.quiet = count, window, quiet
        self._held: list[Notice] = []  # the group's first count + 1 notices: enough to decide
        self._size = 0
        self._first = self._latest = 0.0  # when the group's first and latest notices came
        self._last: Notice | None = None
        self._sent: deque[tuple[float, int]] = deque()  # (when, how many notices) told recently

    def add(self, notices: list[Notice], now: float) -> None:
        for notice in notices:
            if not self._size:
                self._first = now
            self._size += 1
            if len(self._held) <= self.count:
                self._held.append(notice)
            self._last = notice
            self._latest = now

    def wake_at(self) -> float | None:
        """When the held group is due, if one is held."""
        if not self._size:
            return None
        return min(self._latest + self.quiet, self._first + self.window)

    def due(self, now: float, final: bool = False) -> list[Alert]:
        """The alerts to send now: the held group, once it is due (or `final`, at a stop)."""
        when = self.wake_at()
        if when is None or (now < when and not final):
            return []
        while self._sent and self._sent[0][0] <= now - self.window:
            self._sent.popleft()
        recent = sum(n for _, n in self._sent)
        assert self._last is not None
        out: list[Alert]
        if recent + self._size > self.count:
            out = [Summary(self._size, self._held[0], self._last)]
        else:
            out = list(self._held)
        self._sent.append((now, self._size))
        self._held, self._size, self._last = [], 0, None
        return out
