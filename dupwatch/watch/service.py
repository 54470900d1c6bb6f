"""The always-on service: watch the folders, catch up with the disk, report each duplicate that lands.

One thread does all the work, through the same pipeline as `scan`: it drains the Settler that
watchdog's threads fill, keeps the cache in step with moves and deletions, and talks to systemd
(READY, STATUS, WATCHDOG, STOPPING, RELOADING). Signals only set flags that this loop reads.

Start-up order is what makes restarts safe: the watcher is armed first, then the cache is
reconciled with the disk (every file under the roots ingested, unchanged ones skipped at the
cost of a stat; then deleted files dropped), so a file that lands during the catch-up is seen by
one or the other, and a pair already reported is never reported again (the store keeps pairs).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from dupwatch.config import Config, NoticesConfig, ReviewConfig, WatchConfig
from dupwatch.errors import (
    CacheUnavailable,
    ConfigError,
    DupwatchError,
    ExitCode,
    SkipFile,
    UsageError,
    one_line,
)
from dupwatch.pipeline import Duplicate, Indexed, Pipeline, Unchanged, default_workers
from dupwatch.report import Tally, duplicate_text, plural, shown, skipped_text
from dupwatch.sinks.outbox import Outbox, open_outbox
from dupwatch.store import open_store
from dupwatch.walk import walk
from dupwatch.watch.observer import Gone, Moved, Watcher
from dupwatch.watch.sdnotify import Notifier
from dupwatch.watch.settle import Settler

if TYPE_CHECKING:
    from dupwatch.review.server import ReviewServer

log = logging.getLogger("dupwatch")

POLL_SECONDS = 0.2  # how often settled files are looked for: the floor of the alert latency
COMMIT_SECONDS = 1.0
# A duplicate is committed within this, so that its notice can go out (the outbox sends only
# what is committed); a burst still commits in batches.
NOTICE_COMMIT_SECONDS = 0.1
# On SIGTERM, pending notices are sent for at most this long (within TimeoutStopSec=15, after
# the file in hand is finished); the rest go at the next start.
STOP_DRAIN_SECONDS = 5.0
STATUS_SECONDS = 0.5
# A file that looks deleted stays in the cache this long past the settle delay, in case it
# shows up moved (see `Service._claim`); until then `find` passes over it as it is not on disk.
GONE_GRACE = 2.0
# A watcher whose thread died is armed anew once; dying again this soon, the service exits
# non-zero instead, for the service manager to restart it (and to show it failing).
REARM_SECONDS = 60.0
# A cache that went away (a PostgreSQL server restarted, the network down) is tried again
# after 1, 2, 4, … seconds, at most this long apart.
WAIT_FIRST = 1.0
WAIT_MAX = 30.0
# A library's warning or error is one line of the log at most this long: it may quote whole
# structures (watchdog's quoted every watch of a deep tree, megabytes a line).
WARNING_CHARS = 300


def roots_of(config: Config, paths: Sequence[str]) -> list[str]:
    """The folders to watch: PATH arguments, else `watch.paths`; each must be a folder."""
    given: list[tuple[str, str | None]]  # a folder, and the config key it came from
    if paths:
        given = [(os.path.abspath(os.path.expanduser(p)), None) for p in paths]
    else:
        given = [(os.path.abspath(p.expanduser()), f"watch.paths[{i}]")
                 for i, p in enumerate(config.watch.paths)]
    if not given:
        raise UsageError("nothing to watch: give PATH arguments, or set watch.paths in the config")
    for path, key in given:
        if not os.path.isdir(path):
            problem = "not a folder" if os.path.exists(path) else "no such folder"
            if key is not None:
                raise ConfigError(key, f"{problem} (got {path!r})")
            raise DupwatchError(f"{path}: {problem}")
    roots = sorted({path for path, _ in given})
    # A folder inside another watched one is watched through it already (and only once).
    return [r for r in roots if not any(r.startswith(o.rstrip(os.sep) + os.sep) for o in roots)]


class Service:
    """`dupwatch watch`: run() until SIGTERM or SIGINT; SIGHUP rereads the config."""

    def __init__(
        self, load: Callable[[], Config], paths: Sequence[str], notifier: Notifier | None = None
    ) -> None:
        self._load = load  # the config as the command line resolves it (file, --cache)
        self._paths = list(paths)
        self.notifier = notifier if notifier is not None else Notifier()
        self.config = load()
        self.roots = roots_of(self.config, self._paths)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.files = 0  # files indexed or found unchanged since start
        self.duplicates = 0
        self._catching_up = False
        self._behind: set[str] = set()  # roots to catch up with (a reload, a fall-back to polling)
        self._gone: deque[tuple[float, Gone]] = deque()  # deletions waiting out their grace period
        self._next_commit = self._next_status = self._next_ping = self._next_poll = 0.0
        self._status = ""
        self._ping = self.notifier.watchdog_interval()
        self._rearmed = -REARM_SECONDS
        self._connected = False  # a store and a pipeline on it (not while waiting for the cache)
        self._told_ready = False

    def run(self) -> ExitCode:
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        self.review = self._review(self.config)  # a busy port or a missing password stops the start
        try:
            self.outbox = self._outbox(self.config)
            self.settler = Settler(self.config.watch.settle_seconds)
            try:
                if self._connect():
                    if self.review is not None:
                        self.review.start()
                    self.outbox.start()  # notices left pending by the last run go out first
                    self._recover_quarantine()
                    self.watcher = self._arm(self.config, self.roots)
                    try:
                        self._watch()
                    finally:
                        self.watcher.stop()
            finally:
                if self._stop.is_set():
                    self.notifier.stopping()
                self._disconnect()  # commits
                self.outbox.close(STOP_DRAIN_SECONDS)
        finally:
            if self.review is not None:
                self.review.close()
            self.notifier.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("stopped: %d files seen, %d duplicates found", self.files, self.duplicates)
        return ExitCode.OK

    def _watch(self) -> None:
        """Catch up, then serve until stopped; a cache that goes away is waited for, then the
        folders are caught up with again (what landed meanwhile, and the batch the loss undid)."""
        while True:
            try:
                self._catch_up(self.roots, ready=True)
                while not self._stop.wait(POLL_SECONDS):
                    if self._reload.is_set():
                        self._reload.clear()
                        self._reread()
                    self._serve()
                    self._tick()
                return
            except CacheUnavailable as exc:
                self._behind.clear()  # all the roots are caught up with once it is back
                if not self._wait_out(exc):
                    return

    # -- the cache: open, lost, waited for ---------------------------------------------------

    def _connect(self) -> bool:
        """The store and the pipeline on it; a server that does not answer is waited for.
        False when stopped while waiting."""
        try:
            self._open_cache()
        except CacheUnavailable as exc:
            return self._wait_out(exc)
        return True

    def _open_cache(self) -> None:
        store = open_store(self.config.cache)
        try:
            pipeline = Pipeline(self.config, store)  # the searches, loaded from the store
        except BaseException:
            with contextlib.suppress(CacheUnavailable):
                store.close()
            raise
        self.store, self.pipeline, self._connected = store, pipeline, True

    def _disconnect(self) -> None:
        """Let go of the pipeline and the store (committing what can still be committed)."""
        if not self._connected:
            return
        self._connected = False
        self.pipeline.close()
        try:
            self.store.close()
        except CacheUnavailable as exc:
            log.warning("%s: the last files are read again at the next start", exc)

    def _wait_out(self, exc: CacheUnavailable) -> bool:
        """The cache went away (or is not up yet): wait for it, answering the watchdog, and
        open it again. False when stopped while waiting."""
        log.warning("%s", exc.waiting())
        self._disconnect()  # the uncommitted batch is gone with the connection
        # A start that waits has started: systemd's start timeout must not kill it.
        self._ready()
        delay = WAIT_FIRST
        cache = exc.cache
        while not self._pause(delay):
            try:
                self._open_cache()
            except CacheUnavailable:
                delay = min(WAIT_MAX, delay * 2)
                continue
            log.info("cache %s: reachable again; catching up", cache)
            return True
        return False

    def _pause(self, seconds: float) -> bool:
        """Wait `seconds` (watchdog pings and status going on); True when stopped."""
        deadline = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            if self._ping is not None and now >= self._next_ping:
                self.notifier.watchdog()  # not hung: waiting, and stoppable at once
                self._next_ping = now + self._ping / 2
            status = f"waiting for the cache; {self.settler.pending()} queued"
            if status != self._status:
                self.notifier.status(status)
                self._status = status
            if now >= deadline:
                return self._stop.is_set()
            if self._stop.wait(min(POLL_SECONDS, deadline - now)):
                return True

    def _ready(self) -> None:
        if not self._told_ready:
            self._told_ready = True
            self.notifier.ready()

    def _recover_quarantine(self) -> None:
        """A resolve killed mid-move (by this service's page or `dupwatch resolve`) is finished
        or undone from its journal before the catch-up looks at the folders: every photo is
        then either where it was or in the quarantine, and the catch-up sees it there."""
        from dupwatch import actions

        if not actions.enabled(self.config):
            return
        try:
            finished = actions.quarantine(self.config).recover()
        except (OSError, DupwatchError) as exc:
            log.warning("actions: the quarantine's journal could not be recovered: %s", exc)
            return
        if finished:
            log.info("actions: %s left by a resolve that was stopped, finished",
                     plural(len(finished), "move"))

    @staticmethod
    def _review(config: Config) -> ReviewServer | None:
        if not config.review.enabled:
            return None
        from dupwatch.review.server import ReviewServer

        return ReviewServer(config)

    @staticmethod
    def _outbox(config: Config) -> Outbox:
        return open_outbox(config, lambda: open_store(config.cache), wait_for_lock=True)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only flags here: the loop may be inside the store or a notify call when a signal lands.
        if signum == signal.SIGHUP:
            self._reload.set()
        else:
            self._stop.set()

    # -- watching and catching up -------------------------------------------------------------

    def _arm(self, config: Config, roots: list[str]) -> Watcher:
        watch = config.watch
        watcher = Watcher(roots, config.selection(), self.settler,
                          [str(p) for p in watch.polling], watch.poll_interval)
        watcher.start()
        inotify = [r for r in roots if r not in watcher.polled]
        how = [f"{len(inotify)} with inotify"] if inotify else []
        how += [f"{len(watcher.polled)} by polling every {watch.poll_interval:g} s"] if watcher.polled else []
        log.info("watching %s (%s), settle %g s", ", ".join(shown(r) for r in roots), ", ".join(how),
                 watch.settle_seconds)
        for path in watch.polling:
            folder = os.path.abspath(path.expanduser())
            for root in roots:
                if folder.startswith(root.rstrip(os.sep) + os.sep):
                    log.warning("watch.polling: %s is inside %s, which is watched as a whole: list %s"
                                " to poll it", shown(folder), shown(root), shown(root))
        return watcher

    def _catch_up(self, roots: list[str], ready: bool = False) -> None:
        """Reconcile the cache with the disk under `roots` (the watcher already armed).

        With `ready`, READY=1 goes out once the catch-up is under way, not when it ends: a first
        catch-up of a big library takes longer than systemd waits for a start. Deleted files
        are forgotten last, so that a file moved while the service was down is claimed first.
        """
        started = time.monotonic()
        self._apply(self.watcher.changes(), started)
        if ready:
            self._ready()
        tally = Tally()
        scan = self.config.scan
        self._catching_up = True
        try:
            paths = walk(roots, self.config.selection(), scan.follow_symlinks)
            self._ingest((self._claim(p) for p in paths), default_workers(scan.workers), tally)
        finally:
            self._catching_up = False
        if not self._stop.is_set():
            library = self.pipeline.library
            forgotten = sum(library.forget_missing(root, set(), whole_root=True) for root in roots)
            log.info("caught up: %s", tally.text(forgotten, time.monotonic() - started))

    def _serve(self) -> None:
        """Ingest the files that have settled, after applying the moves and deletions before them."""
        if not self.watcher.alive():
            self._rearm()
        self.pipeline.library.follow()  # other hosts' files, between bursts too: none piles up
        self._behind.update(self.watcher.maintain())
        if self._behind and not self._catching_up:
            roots = sorted(self._behind)
            self._behind.clear()
            self._catch_up(roots)
        now = time.monotonic()
        due = self.settler.due(now)
        # After `due`: a move is queued before its new name is touched, so every move that
        # concerns a due path is in this batch and the moved file is found unchanged.
        self._apply(self.watcher.changes(), now)
        if not self.config.scan.follow_symlinks:
            due = [p for p in due if not os.path.islink(p)]  # as the walk does
        for path in due:
            self._claim(path)
        self._forget_gone(now)
        if due:
            # Even one file is decoded by the workers, kept up between bursts: whatever a file
            # does to its decoder then costs a worker, not the service and its memory.
            self._ingest(due, default_workers(self.config.scan.workers))

    def _rearm(self) -> None:
        """Watch anew after a watcher thread died, and catch up with what it did not hear."""
        now = time.monotonic()
        if now - self._rearmed < REARM_SECONDS:
            raise DupwatchError("the folder watcher stopped twice within a minute; exiting for the"
                                " service manager to restart dupwatch")
        self._rearmed = now
        log.error("the folder watcher stopped; watching %s anew and catching up",
                  ", ".join(shown(r) for r in self.roots))
        self.watcher.stop()
        self.watcher = self._arm(self.config, self.roots)
        self._behind.update(self.roots)

    def _apply(self, changes: Iterable[Moved | Gone], now: float) -> None:
        """Moves at once; deletions after a grace period (see `_claim`)."""
        for change in changes:
            if isinstance(change, Gone):
                self._gone.append((now + self.config.watch.settle_seconds + GONE_GRACE, change))
            elif change.folder:
                self.pipeline.library.move_folder(change.old, change.new)
            else:
                self.pipeline.library.move(change.old, change.new)
        self.store.commit()

    def _forget_gone(self, now: float) -> None:
        while self._gone and self._gone[0][0] <= now:
            _, gone = self._gone.popleft()
            if gone.folder:
                self.pipeline.library.forget_missing(gone.path, set())  # each file checked on disk
            elif not os.path.lexists(gone.path):  # not made anew since
                self.pipeline.library.forget(gone.path)
        self.store.commit()

    def _claim(self, path: str | SkipFile) -> str | SkipFile:
        """A file new to the cache takes over the entry of a cached file it is, moved unseen.

        inotify misses moves into a folder made a moment before (its watch is not there yet;
        `mkdir sorted && mv *.jpg sorted/` does that) and every move while the service is down:
        the file then looks deleted here and new there. The same device and inode, size and
        mtime at a path that is gone is that move, and the moved file keeps its id and pairs.
        """
        if isinstance(path, SkipFile):
            return path
        try:
            st = os.stat(path)
        except OSError:
            return path  # the pipeline says why
        self.pipeline.library.claim(path, st)
        return path

    def _ingest(self, paths: Iterable[str | SkipFile], workers: int, tally: Tally | None = None) -> None:
        # On a stop no new path goes in, and the files in flight are finished, not cut off: the
        # pipeline stores a file before it records the file's pair, so a file left between the
        # two would be found unchanged at the next start, its duplicate never told.
        events = self.pipeline.ingest(self._until_stopped(paths), workers, idle=self._tick)
        try:
            for event in events:
                self._report(event)
                if tally is not None:
                    tally.add(event)
                self._tick()
                if (self._catching_up and tally is not None and not self._stop.is_set()
                        and time.monotonic() >= self._next_poll):
                    # Files landing during a long first catch-up are reported as they land.
                    self._next_poll = time.monotonic() + POLL_SECONDS
                    self._serve()
        except KeyboardInterrupt:
            # Ctrl-C reaches the worker processes too, and comes back as their result (before
            # the file it was for is stored: that file is read again at the next start).
            self._stop.set()

    def _until_stopped(self, paths: Iterable[str | SkipFile]) -> Iterator[str | SkipFile]:
        for path in paths:
            if self._stop.is_set():
                return  # the rest is caught up at the next start
            yield path

    def _report(self, event: Indexed | Unchanged | Duplicate | SkipFile) -> None:
        if isinstance(event, Duplicate):
            self.duplicates += 1
            self._next_commit = min(self._next_commit, time.monotonic() + NOTICE_COMMIT_SECONDS)
            log.info("%s", duplicate_text(event).replace("\n    ", " "))  # one line, both files
        elif isinstance(event, SkipFile):
            if event.told:
                log.debug("%s", skipped_text(event))  # said at an earlier run, unchanged since
            elif os.path.lexists(event.path):
                log.warning("%s", skipped_text(event))
            else:
                log.debug("%s", skipped_text(event))  # deleted before it settled: nothing to say
        else:
            self.files += 1

    def _tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_commit:
            self.store.commit()
            self.outbox.wake()
            self._next_commit = now + COMMIT_SECONDS
        if self._ping is not None and now >= self._next_ping and self.watcher.alive():
            # Not while deaf: the service manager restarts a service that stops pinging.
            self.notifier.watchdog()
            self._next_ping = now + self._ping / 2
        status = (f"{'catching up; ' if self._catching_up else ''}{self.settler.pending()} queued,"
                  f" {self.files} files seen, {self.duplicates} duplicates found")
        if status != self._status and now >= self._next_status:
            self.notifier.status(status)
            self._status = status
            self._next_status = now + STATUS_SECONDS

    # -- SIGHUP -------------------------------------------------------------------------------

    def _reread(self) -> None:
        """Reread the config; a broken one is reported and the running one kept."""
        self.notifier.reloading()
        try:
            self._switch()
        except DupwatchError as exc:
            log.error("reload failed, still running with the previous config: %s", shown(str(exc)))
        except Exception as exc:  # a bug; still no reason to stop watching
            log.error("reload failed (a bug: please report it), still running with the previous config:"
                      " %s: %s", type(exc).__name__, shown(one_line(str(exc), WARNING_CHARS)))
        self.notifier.ready()

    def _switch(self) -> None:
        old = self.config
        config = self._load()
        roots = roots_of(config, self._paths)
        if config == old and roots == self.roots:
            log.info("reloaded the config: nothing changed")
            return
        # Everything new is built before anything old is let go, so that a failure keeps the old.
        store = self.store
        if config.cache.resolved() != old.cache.resolved():
            store = open_store(config.cache)
        pipeline = self.pipeline
        outbox = self.outbox
        review = self.review
        try:
            if config.review != old.review or config.cache != old.cache:
                if config.review.enabled:
                    from dupwatch.review.auth import check_bind

                    check_bind(config.review, config.review.bind)  # refused before the old one goes
                if self.review is not None:
                    self.review.close()  # lets go of the port for the new one
                    self.review = None
                review = self._review(config)
            if (config.notices, config.review.public_url) != (old.notices, old.review.public_url) \
                    or store is not self.store:
                outbox = self._outbox(config)  # built (URLs checked, XMP loaded) before the old goes
            if store is not self.store or _without_watch(config) != _without_watch(old):
                pipeline = Pipeline(config, store)
            watcher = self.watcher
            if roots != self.roots or _watching(config) != _watching(old):
                watcher = self._arm(config, roots)
        except BaseException:
            if store is not self.store:
                store.close()
            if review is not self.review and review is not None:
                review.close()
            raise
        rebuilt = pipeline is not self.pipeline or watcher is not self.watcher
        if watcher is not self.watcher:
            # Both watch for a moment: an event is seen twice (harmless), never missed.
            self.watcher.stop()
            self._apply(self.watcher.changes(), time.monotonic())
            self.watcher = watcher
        if store is not self.store:
            self.store.close()
            self.store = store
        if outbox is not self.outbox:
            self.store.commit()
            self.outbox.close(STOP_DRAIN_SECONDS)  # lets go of the outbox lock for the new one
            self.outbox = outbox
            self.outbox.start()
        if review is not self.review:
            self.review = review
            if review is not None:
                review.start()
        self.settler.delay = config.watch.settle_seconds
        if pipeline is not self.pipeline:
            self.pipeline.close()
        self.pipeline, self.config, self.roots = pipeline, config, roots
        log.info("reloaded the config")
        if rebuilt:
            self._behind.update(roots)  # the main loop catches up, after READY=1 went out


def _watching(config: Config) -> tuple[object, ...]:
    """What the watcher is built from, besides the roots."""
    w, scan = config.watch, config.scan
    return w.polling, w.poll_interval, scan.extensions, scan.ignore


def _without_watch(config: Config) -> Config:
    return config.model_copy(update={"watch": WatchConfig(), "notices": NoticesConfig(),
                                     "review": ReviewConfig()})


# -- logs ---------------------------------------------------------------------------------------

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


class _JournalFormatter(logging.Formatter):
    """journald adds the time; a `<N>` prefix gives each line its priority (sd-daemon(3))."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>{super().format(record)}"


def under_journald() -> bool:
    """True when stderr is the journal's stream: JOURNAL_STREAM names its device and inode.

    The variable alone is not enough: a child of a service inherits it with its stderr
    redirected elsewhere (systemd.exec(5) says to compare).
    """
    stream = os.environ.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


def use_service_logs() -> None:
    """Timestamps on a terminal or in a file; none (the journal's own) under journald."""
    if under_journald():
        formatter: logging.Formatter = _JournalFormatter("dupwatch: %(message)s")
    else:
        formatter = logging.Formatter("%(asctime)s dupwatch: %(message)s", "%Y-%m-%d %H:%M:%S")
    for handler in log.handlers:
        handler.setFormatter(formatter)
    # watchdog's own warnings (a network share that stopped answering) go the same way.
    ours = logging.getLogger("watchdog")
    ours.handlers[:] = log.handlers
    ours.setLevel(logging.WARNING)
    ours.propagate = False
    warnings.showwarning = _log_warning


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """Python warnings raised outside a decode (`quiet` takes those): one short line each.

    watchdog warns when it watches a folder it already watches (a folder made and moved fast,
    a deep tree arriving): harmless to dupwatch, so only at debug level.
    """
    text = one_line(str(message), WARNING_CHARS)
    level = logging.DEBUG if f"{os.sep}watchdog{os.sep}" in filename else logging.WARNING
    log.log(level, "%s: %s", category.__name__, shown(text))
