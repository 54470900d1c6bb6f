"""When a file that is being written has settled, so that it is read once, whole.

A copy over SMB or from a phone takes seconds and shows up as a stream of events. A path is
settled when two looks at its (size, mtime_ns), `delay` seconds apart with no event between
them, agree. A close-after-write event is stronger evidence: the writer is done, so the file
is settled at the next poll if its stat still matches the one taken at the close. The stat check
is what makes this work without events too: a polling watcher on a network mount sees a file
change only now and then, and a file still growing between two looks is simply looked at again.

The watcher thread calls `touch` and `forget`; the main loop calls `due`. One entry per path,
so a burst of events costs memory by path, not by event.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

Stat = tuple[int, int]  # (st_size, st_mtime_ns)


@dataclass
class _Entry:
    seen: Stat | None  # the stat at the previous look; None: look again first (an event since)
    look_at: float  # the earliest time the next look may confirm `seen`
    generation: int  # new at every touch, so a look racing with an event is discarded


class _Vanished:
    pass


class _Unreadable:
    pass


_VANISHED = _Vanished()
_UNREADABLE = _Unreadable()
Look = Stat | _Vanished | _Unreadable


class Settler:
    """Paths being written → paths that have settled, in the order they first arrived.

    Times are the caller's clock (`time.monotonic()` in the service), passed in so that the
    logic is tested without sleeping.
    """

    def __init__(self, delay: float, stat: Callable[[str], os.stat_result] = os.stat) -> None:
        if delay < 0:
            raise ValueError(f"delay must be >= 0, not {delay}")
        self.delay = delay
        self._stat = stat
        self._entries: dict[str, _Entry] = {}  # insertion order is arrival order
        # One counter for all paths, not one per entry: a path forgotten and touched again must
        # not match a look taken at the old entry (a "vanished" from between the two would
        # otherwise drop the new file).
        self._generation = 0
        self._lock = threading.Lock()

    def touch(self, path: str, now: float, closed: bool = False) -> None:
        """An event for `path`: created, written, moved in, or (closed=True) closed after writing.

        A plain event throws away what was seen: the file is looked at again at the next poll and
        confirmed `delay` later. A close takes its stat here, in the watcher thread, so that the
        next poll can confirm it: one stat per file closed, while plain events (one per write)
        take none.
        """
        seen: Stat | None = None
        if closed:
            look = self._look(path)
            seen = look if isinstance(look, tuple) else None  # gone or odd: the next poll decides
        with self._lock:
            self._generation += 1
            entry = self._entries.get(path)
            if entry is None:
                self._entries[path] = _Entry(seen, now, self._generation)
            else:
                entry.seen = seen
                entry.look_at = now
                entry.generation = self._generation

    def forget(self, path: str) -> None:
        """`path` was deleted or moved away: nothing to settle any more."""
        with self._lock:
            self._entries.pop(path, None)

    def pending(self) -> int:
        with self._lock:
            return len(self._entries)

    def due(self, now: float) -> list[str]:
        """The paths that have settled by `now`, each returned once, in order of first arrival.

        A path that vanished is dropped without a word (the watcher reports deletions, not this).
        A path that cannot be stat'ed for another reason is returned, so that the pipeline tries
        it and reports why it was skipped, rather than it waiting here forever.
        """
        with self._lock:
            todo = [(path, e.seen, e.generation) for path, e in self._entries.items()
                    if e.seen is None or now >= e.look_at]
        # Stat outside the lock: on a network mount thousands of stats take a while, and the
        # watcher thread must not wait on them (the kernel's event queue would overflow).
        looks = [(path, seen, generation, self._look(path)) for path, seen, generation in todo]
        settled: list[str] = []
        with self._lock:
            for path, seen, generation, look in looks:
                entry = self._entries.get(path)
                if entry is None or entry.generation != generation:
                    continue  # forgotten or touched meanwhile: that event decides
                if look is _VANISHED:
                    del self._entries[path]
                elif look is _UNREADABLE or look == seen:
                    del self._entries[path]
                    settled.append(path)
                else:
                    # First look since an event, or the file changed since the last one.
                    entry.seen = look if isinstance(look, tuple) else None
                    entry.look_at = now + self.delay
        return settled

    def _look(self, path: str) -> Look:
        try:
            st = self._stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return _VANISHED
        except OSError:
            return _UNREADABLE
        return (st.st_size, st.st_mtime_ns)
