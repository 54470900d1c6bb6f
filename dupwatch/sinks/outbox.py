"""The outbox: every notice recorded in the cache reaches every sink, from background threads.

The store is the outbox. A pair's notice is committed with the pair; each sink keeps the id of
the last notice it delivered; one thread per sink reads what lies past that, sends it, and
moves its position on, notice by notice. Ingestion only commits and wakes the threads, so a slow
or dead target never makes it wait, and a notice still pending when the process dies (even by
kill -9) is sent at the next start. Delivery is at least once: a kill between a send and its
position being saved sends that one notice again.

One process per cache delivers, of every host that shares it: the one whose store connection
took the delivering role (`take_delivery`: a flock on `<cache>.notices.lock` for SQLite, an
advisory lock for PostgreSQL; either is let go when the process dies, however it dies). A `scan`
run while the watcher delivers leaves the notices to the watcher, which reads the outbox every
half second.

A PostgreSQL cache that goes away (`CacheUnavailable`) ends no thread for good: the sinks'
threads stop, the delivering role is let go with its connection, and a thread tries the server
again (1 s, doubling to 30 s); once it answers, the role is taken again and each sink goes on
from the position saved in the store, so what was pending meanwhile goes out then, once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from dupwatch.config import BurstConfig, Config
from dupwatch.errors import CacheUnavailable, DupwatchError
from dupwatch.record import Notice
from dupwatch.sinks.base import Alert, DeliveryError, Sink, last_id
from dupwatch.sinks.burst import Burst
from dupwatch.sinks.registry import build
from dupwatch.store.base import Store

log = logging.getLogger("dupwatch")

POLL_SECONDS = 0.5  # how often each sink looks for notices committed by another process
PAGE = 256  # notices read (and held) at once per sink
RETRY_FIRST = 1.0  # a failed delivery is tried again after 1, 2, 4, … seconds
RETRY_MAX = 300.0
LOCK_RETRY_SECONDS = 5.0
YIELD_SECONDS = 0.0  # sleep(0) lets the ingesting thread take the GIL between two notices
WAIT_FIRST = 1.0  # a cache that went away is tried again after 1, 2, 4, … seconds
WAIT_MAX = 30.0


def open_outbox(config: Config, store: Callable[[], Store], wait_for_lock: bool) -> Outbox:
    """The outbox of the config's sinks (none enabled: one that does nothing)."""
    return Outbox(build(config), store, config.notices.burst, wait_for_lock)


class Outbox:
    def __init__(self, sinks: Sequence[Sink], store: Callable[[], Store], burst: BurstConfig,
                 wait_for_lock: bool) -> None:
        self.sinks, self._store, self._burst = list(sinks), store, burst
        self._wait = wait_for_lock
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._holder: Store | None = None  # the connection that holds the delivering role
        self._targets: list[_Target] = []
        self._supervisor: threading.Thread | None = None
        self._guard = threading.Lock()  # the stop, and a loss met by several threads at once
        self._recovering = False

    def start(self) -> None:
        if not self.sinks:
            return
        try:
            self._begin()
        except CacheUnavailable as exc:
            self.lost(exc)

    def _begin(self) -> None:
        # Each sink's position is made now, whoever delivers: a sink new to this cache starts
        # at the newest notice, and so gets every notice found from this start on.
        store = self._store()
        try:
            for sink in self.sinks:
                store.position(sink.key)
        finally:
            store.close()
        if self._take_lock():
            self._start_targets()
        elif self._wait:
            self._supervise(self._wait_for_lock)

    def _supervise(self, work: Callable[[], None]) -> None:
        self._supervisor = threading.Thread(target=work, name="dupwatch-outbox", daemon=True)
        self._supervisor.start()

    def lost(self, exc: CacheUnavailable) -> None:
        """The cache went away (a sink's thread or the start met it): every sink stops, and
        starts again from its saved position once the cache answers."""
        with self._guard:
            if self._stop.is_set() or self._recovering:
                return
            self._recovering = True
            log.warning("notices: cache %s: unreachable (%s); delivering them when it is back",
                        exc.cache, exc.reason)
            for target in self._targets:
                target.retire()
            self._supervise(self._recover)

    def _recover(self) -> None:
        for target in self._targets:
            target.thread.join()  # a sink's thread must not deliver beside its successor
        self._targets = []
        if self._holder is not None:
            with contextlib.suppress(DupwatchError):
                self._holder.close()
            self._holder = None
        delay = WAIT_FIRST
        while not self._stop.wait(delay):
            try:
                self._begin_again()
            except CacheUnavailable:
                delay = min(WAIT_MAX, delay * 2)
                continue
            except DupwatchError as exc:  # not a lost server: this process no longer delivers
                log.error("notices: no delivery: %s", exc)
            return

    def _begin_again(self) -> None:
        store = self._store()
        try:
            for sink in self.sinks:
                store.position(sink.key)
        finally:
            store.close()
        log.info("notices: the cache is back")
        if self._take_lock():
            self._start_targets()
        elif self._wait:
            self._wait_for_lock()

    def wake(self) -> None:
        """New notices were committed: look now rather than at the next poll."""
        for target in list(self._targets):
            target.wakeup.set()

    def close(self, drain: float) -> None:
        """Send what is due (the caller has committed), for at most `drain` seconds, then stop.
        What is left stays in the outbox for the next start."""
        self._deadline = time.monotonic() + drain
        with self._guard:
            self._stop.set()
            supervisor = self._supervisor
        if supervisor is not None:
            supervisor.join()
        for target in self._targets:
            target.wakeup.set()
        for target in self._targets:
            target.thread.join(max(0.0, self._deadline - time.monotonic()) + 1.0)
        if self._holder is not None:
            with contextlib.suppress(CacheUnavailable):  # gone with the server: so is the role
                self._holder.close()  # lets go of the delivering role
            self._holder = None

    # -- one delivering process per cache -----------------------------------------------------

    def _take_lock(self) -> bool:
        store = self._store()
        try:
            held_by = store.take_delivery()
        except BaseException:
            store.close()
            raise
        if held_by is not None:
            store.close()
            if not self._wait:
                log.info("notices: %s", held_by)
            return False
        self._holder = store  # the role lasts as long as this connection
        return True

    def _wait_for_lock(self) -> None:
        log.info("notices: another dupwatch process delivers them for now")
        while not self._stop.wait(LOCK_RETRY_SECONDS):
            with contextlib.suppress(DupwatchError):
                if self._take_lock():
                    log.info("notices: delivering them from now on")
                    self._start_targets()
                    return

    def _start_targets(self) -> None:
        with self._guard:
            if self._stop.is_set():
                return
            # From here a loss is a new one: the threads started below may meet it at once.
            self._recovering = False
            self._targets = []
            for sink in self.sinks:
                burst = Burst(self._burst.count, self._burst.seconds, self._burst.quiet_seconds)
                target = _Target(sink, self._store, burst if sink.alerts else None, self)
                self._targets.append(target)
                target.thread.start()

    def stopping(self) -> bool:
        return self._stop.is_set()

    def past_deadline(self) -> bool:
        return time.monotonic() > self._deadline


class _Target:
    """One sink's thread: read past its position, send (through the burst rule for alerts),
    save the new position; a failed send is tried again with backoff, in order."""

    def __init__(self, sink: Sink, store: Callable[[], Store], burst: Burst | None, outbox: Outbox) -> None:
        self.sink, self._open, self._burst, self._outbox = sink, store, burst, outbox
        self.wakeup = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"dupwatch-{sink.key}", daemon=True)
        self._queue: deque[Alert] = deque()
        self._failures = 0
        self._retry_at = 0.0
        self._retired = threading.Event()

    def retire(self) -> None:
        """Stop at the next step, sending nothing more: the cache went away."""
        self._retired.set()
        self.wakeup.set()

    def _run(self) -> None:
        try:
            store = self._open()  # its own connection: SQLite connections stay in one thread
        except CacheUnavailable as exc:
            self._outbox.lost(exc)
            return
        except DupwatchError as exc:
            log.error("%s: no delivery: %s", self.sink.label, exc)
            return
        try:
            self._loop(store)
        except CacheUnavailable as exc:
            self._outbox.lost(exc)
        except Exception:
            log.exception("%s: delivery stopped by an unexpected error", self.sink.label)
        finally:
            with contextlib.suppress(CacheUnavailable):
                store.close()

    def _loop(self, store: Store) -> None:
        read = store.position(self.sink.key)
        while not self._retired.is_set():
            stopping = self._outbox.stopping()
            fresh: list[Notice] = store.notices(read, PAGE) if len(self._queue) < PAGE else []
            if fresh:
                read = fresh[-1].id
                if not self.sink.records:
                    fresh = [n for n in fresh if not _decided(store, n)]
            everything_read = len(fresh) < PAGE and len(self._queue) < PAGE
            now = time.monotonic()
            if self._burst is not None:
                self._burst.add(fresh, now)
                self._queue.extend(self._burst.due(now, final=stopping and everything_read))
            else:
                self._queue.extend(fresh)
            self._send(store, stopping)
            if stopping:
                held = self._burst is not None and self._burst.wake_at() is not None
                done = everything_read and not self._queue and not held
                if done:
                    return
                if self._failures or self._outbox.past_deadline():
                    log.warning("%s: the notices not delivered yet go at the next start", self.sink.label)
                    return
                continue
            self.wakeup.wait(self._timeout(now, everything_read))
            self.wakeup.clear()

    def _send(self, store: Store, stopping: bool) -> None:
        """Send the queue in order until a failure, saving the position after each one sent (or
        passed over): a kill then repeats at most the one notice between a send and its save."""
        while self._queue and (stopping or time.monotonic() >= self._retry_at) and not self._retired.is_set():
            item = self._queue[0]
            try:
                self.sink.send(item)
            except DeliveryError as exc:
                if exc.retry:
                    self._failed(str(exc), stopping)
                    break
                log.warning("%s: %s", self.sink.label, exc)  # about this notice only: go on
            except Exception as exc:  # a bug in a sink or its library must not end delivery
                log.exception("%s: unexpected error", self.sink.label)
                self._failed(repr(exc), stopping)
                break
            if self._failures:
                log.info("%s: delivered again after %d failed tries", self.sink.label, self._failures)
                self._failures = 0
            self._queue.popleft()
            store.delivered(self.sink.key, last_id(item))
            time.sleep(YIELD_SECONDS)

    def _failed(self, reason: str, stopping: bool) -> None:
        self._failures += 1
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (self._failures - 1))
        self._retry_at = time.monotonic() + delay
        then = "" if stopping else f"; trying again in {delay:g} s"
        log.warning("%s: not delivered: %s%s", self.sink.label, reason, then)

    def _timeout(self, now: float, everything_read: bool) -> float:
        if not everything_read and len(self._queue) < PAGE:
            return 0.0
        timeout = POLL_SECONDS
        if self._burst is not None and (due := self._burst.wake_at()) is not None:
            timeout = min(timeout, due - now)
        if self._queue:
            timeout = min(timeout, self._retry_at - now)
        return max(0.0, timeout)


def _decided(store: Store, notice: Notice) -> bool:
    """Whether the user marked this notice's pair "not a duplicate" before it was delivered."""
    reviewed = store.reviewed(notice.id)
    return reviewed is not None and reviewed.not_duplicate
