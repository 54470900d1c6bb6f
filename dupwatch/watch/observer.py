"""Filesystem events → the Settler. watchdog's threads only queue paths; the service does the work.

Every watched folder is recursive, with the subfolders made later. inotify by default (one
kernel watch per folder, no work while nothing happens); watchdog's polling for the folders the
config names, network mounts, where inotify never hears of what another machine writes; and
polling too for a folder inotify cannot watch whole because the per-user watch limit is reached.

Moves and deletions are also queued as `Moved` and `Gone` for the service, which keeps the cache
in step with them: the store has one writer, and it is not a watchdog thread.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

from dupwatch.errors import DupwatchError
from dupwatch.report import shown
from dupwatch.walk import Selection
from dupwatch.watch.settle import Settler

log = logging.getLogger("dupwatch")

# watchdog walks a watched tree by recursion (os.walk on Python 3.11, its polling snapshots),
# one frame a level, in its own threads: a folder nested past the interpreter's limit would end
# the thread that hears of it, and with it every later event. A path is at most PATH_MAX (4096)
# bytes, so no walk by path goes deeper than 2048 levels; this limit leaves room for that.
RECURSION_LIMIT = 10_000

RAISE_WATCHES = "sysctl fs.inotify.max_user_watches=524288"
RAISE_INSTANCES = "sysctl fs.inotify.max_user_instances=1024"

# Not opens and read-only closes: dupwatch reading each new photo would hear itself do it.
_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileClosedEvent, FileDeletedEvent,
    FileMovedEvent, DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]


@dataclass(frozen=True)
class Moved:
    """A file or folder renamed or moved within the watched folders."""

    old: str
    new: str
    folder: bool = False


@dataclass(frozen=True)
class Gone:
    """A file or folder deleted, or moved where it is not watched."""

    path: str
    folder: bool = False


Change = Moved | Gone


class Watcher:
    """The observers for a set of root folders, feeding one Settler."""

    def __init__(
        self,
        roots: Sequence[str],
        selection: Selection,
        settler: Settler,
        polling: Sequence[str] = (),
        poll_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.roots = list(roots)
        self.selection = selection
        self.settler = settler
        self.poll_interval = poll_interval
        self._clock = clock
        self._poll_first = {r for r in self.roots if any(_within(r, p) for p in polling)}
        self.polled: list[str] = []  # the roots watched by polling, for the log and the status
        self._inotify: BaseObserver | None = None
        self._polling: BaseObserver | None = None
        self._watches: dict[str, ObservedWatch] = {}  # inotify root → its watch
        self._lock = threading.Lock()
        self._changes: list[Change] = []
        self._suspects: set[str] = set()  # inotify roots that gained a folder since the last look

    def start(self) -> None:
        """Watch every root; raises DupwatchError for a root that cannot be watched at all."""
        sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
        # watchdog warns each time it adds a watch it has (every folder of a tree made level by
        # level, as `cp -r` does, is added again with each level below it): a warning quoting
        # the watch, kept in the warnings registry for good. Ignored, none is built up or printed.
        warnings.filterwarnings("ignore", "Callback with id", RuntimeWarning, "watchdog")
        _cheap_watch_repr()
        try:
            for root in self.roots:
                if root in self._poll_first:
                    self._poll(root)
                else:
                    self._notify(root)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for observer in (self._inotify, self._polling):
            if observer is not None and observer.is_alive():
                observer.stop()
                observer.join(timeout=5.0)
        self._inotify = self._polling = None
        self._watches.clear()

    def alive(self) -> bool:
        """False once a watchdog thread has died: no event would arrive again, and none says so.

        The emitter of a root that was deleted or unmounted ends by design (see `on_event`):
        that root is not watched until it is back and the service restarts, and is no death.
        """
        for observer in (self._inotify, self._polling):
            if observer is None:
                continue
            if not observer.is_alive():
                return False
            if any(not e.is_alive() and os.path.isdir(e.watch.path) for e in observer.emitters):
                return False
        return True

    def changes(self) -> list[Change]:
        """The moves and deletions seen since the last call, in order."""
        with self._lock:
            out, self._changes = self._changes, []
        return out

    def maintain(self) -> list[str]:
        """Move to polling each inotify root that has run out of kernel watches; returns them.

        watchdog quietly leaves unwatched a subfolder whose watch the kernel refused, so after a
        folder appears the limit is probed here, in the service's thread (stopping a watch from
        watchdog's own thread would wait on itself). Files that landed in a folder nobody
        watched are found by the catch-up the service runs on the returned roots.
        """
        with self._lock:
            suspects, self._suspects = self._suspects, set()
        moved = []
        for root in sorted(suspects):
            watch = self._watches.get(root)
            if watch is not None and self._inotify is not None and _inotify_full(root):
                self._inotify.unschedule(watch)
                del self._watches[root]
                self._fall_back(root, errno.ENOSPC)
                moved.append(root)
        return moved

    # -- arming -------------------------------------------------------------------------------

    def _notify(self, root: str) -> None:
        try:
            if self._inotify is None:
                observer = Observer()
                observer.start()
                self._inotify = observer
            # Scheduled on a running observer, so that a refused watch raises here and now.
            watch = self._inotify.schedule(_Handler(root, self), root, recursive=True, event_filter=_EVENTS)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                self._fall_back(root, exc.errno)
                return
            raise DupwatchError(f"cannot watch {root}: {exc.strerror or exc}") from None
        # The root took, but a subfolder may not have: watchdog skips those without a word.
        if _inotify_full(root):
            self._inotify.unschedule(watch)
            self._fall_back(root, errno.ENOSPC)
            return
        self._watches[root] = watch

    def _poll(self, root: str) -> None:
        if self._polling is None:
            observer = PollingObserver(timeout=self.poll_interval)
            observer.start()
            self._polling = observer
        try:
            self._polling.schedule(_Handler(root, self), root, recursive=True, event_filter=_EVENTS)
        except OSError as exc:
            raise DupwatchError(f"cannot watch {root}: {exc.strerror or exc}") from None
        self.polled.append(root)

    def _fall_back(self, root: str, code: int) -> None:
        if code == errno.EMFILE:
            limit, fix = "instance limit (fs.inotify.max_user_instances)", RAISE_INSTANCES
        else:
            limit, fix = "watch limit (fs.inotify.max_user_watches)", RAISE_WATCHES
        log.warning("%s: the inotify %s is reached, so this folder is polled every %g s instead;"
                    " to watch it with inotify, raise the limit as root: %s (and put that setting"
                    " in /etc/sysctl.d/ to keep it)", shown(root), limit, self.poll_interval, fix)
        self._poll(root)

    # -- events, in watchdog's threads: queue and return --------------------------------------

    def on_event(self, root: str, event: FileSystemEvent) -> None:
        src = os.fsdecode(event.src_path)
        now = self._clock()
        if isinstance(event, FileMovedEvent | DirMovedEvent):
            self._moved(root, src, os.fsdecode(event.dest_path), event.is_directory, now)
        elif isinstance(event, DirDeletedEvent):
            if src == root:
                # Unmounted or deleted: its files stay in the cache, the next start catches up.
                log.warning("%s: the watched folder is gone; it is no longer watched", shown(root))
            elif self._wanted(root, src, folder=True):
                self._queue(Gone(src, folder=True))
        elif isinstance(event, DirCreatedEvent):
            if root in self._watches:
                with self._lock:
                    self._suspects.add(root)
        elif isinstance(event, FileDeletedEvent):
            self.settler.forget(src)
            if self._wanted(root, src, folder=False):
                self._queue(Gone(src))
        elif self._wanted(root, src, folder=False):
            self.settler.touch(src, now, closed=isinstance(event, FileClosedEvent))

    def _moved(self, root: str, src: str, dest: str, folder: bool, now: float) -> None:
        was = self._wanted(root, src, folder)
        now_wanted = self._wanted(root, dest, folder)
        if not folder:
            self.settler.forget(src)
        if was and now_wanted:
            self._queue(Moved(src, dest, folder))
        elif was:
            self._queue(Gone(src, folder))
        # A file renamed from `x.part` to `x.jpg` is how most tools finish writing one.
        if now_wanted and not folder:
            self.settler.touch(dest, now)

    def _queue(self, change: Change) -> None:
        with self._lock:
            self._changes.append(change)

    def _wanted(self, root: str, path: str, folder: bool) -> bool:
        """The walk's choice: no ignored name on the way down from `root`; a photo's extension."""
        rel = os.path.relpath(path, root)
        if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
            return False
        *folders, name = rel.split(os.sep)
        if any(self.selection.ignored(part) for part in folders) or self.selection.skipped(path):
            return False
        return not self.selection.ignored(name) if folder else self.selection.wants(name)


def _cheap_watch_repr() -> None:
    """watchdog builds that warning's text before anything can ignore it, and the text holds
    `repr(watch)`, which holds every watched path of the tree (its `short_str` is quoted, not
    called): megabytes a warning, hundreds of thousands of warnings for a deep tree made level
    by level, all in the thread that reads inotify, deaf meanwhile. A watch's repr becomes its
    short form; nothing else reads it.
    """
    try:
        from watchdog.observers import inotify_c
    except ImportError:  # not Linux: no inotify
        return
    watch = getattr(inotify_c, "Watch", None)
    if watch is not None and hasattr(watch, "short_str"):
        watch.__repr__ = lambda self: f"Watch(wd={self.wd})"


class _Handler(FileSystemEventHandler):
    def __init__(self, root: str, watcher: Watcher) -> None:
        self._root = root
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self._watcher.on_event(self._root, event)
        except Exception:
            # An exception would end watchdog's dispatch thread, and with it every later event.
            log.exception("%s: could not queue %r", shown(self._root), event)


def _within(path: str, folder: str) -> bool:
    folder = os.path.abspath(os.path.expanduser(folder))
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


_libc = ctypes.CDLL(None, use_errno=True)
_IN_ATTRIB = 0x4


def _inotify_full(folder: str) -> bool:
    """True when the kernel refuses one more inotify watch for this user (ENOSPC).

    Asked of a fresh inotify instance right after arming a root: watchdog swallows the ENOSPC of
    each subfolder it could not watch, so this is how a partly watched tree shows itself. A
    tree that fills the limit exactly also answers True, and is polled: slower, not wrong.
    """
    fd = int(_libc.inotify_init1(os.O_CLOEXEC))
    if fd < 0:
        return False  # no instance to ask with (EMFILE): arming the root would have said so
    try:
        wd = int(_libc.inotify_add_watch(fd, os.fsencode(folder), _IN_ATTRIB))
        return wd < 0 and ctypes.get_errno() == errno.ENOSPC
    finally:
        os.close(fd)
