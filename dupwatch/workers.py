"""The decoding processes: started in the background, kept between bursts, replaced when one dies.

Decoding runs in worker processes so that whatever a file does to its decoder (a memory blow-up
that the kernel answers with SIGKILL, a crash in a C library) costs a worker, never the process
that owns the cache. Starting the pool (a forkserver that imports the methods, then a fork per
worker) takes seconds; it runs in a thread of its own while the caller keeps calling `idle`, so
that a service goes on answering its watchdog meanwhile.
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from dupwatch.errors import DupwatchError

IDLE_SECONDS = 0.25  # how often `idle` is called while waiting on the pool


class WorkersError(DupwatchError):
    """The decoding processes could not be started at all."""


class InlineExecutor(Executor):
    """Runs each task at submit: for one worker, one file, and tests that need no processes."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future[object] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class Workers:
    """`count` decoding processes (none for one: the work runs inline, in the caller)."""

    def __init__(self, count: int, preload: tuple[str, ...] = ()) -> None:
        self.count = count
        # Modules the forkserver imports before it forks a worker, beside the methods: torch in
        # robust mode, whose import alone leaves 145 MiB of private memory in each process that
        # makes it; imported once, before the fork, its pages are shared by every worker.
        self.preload = preload
        self.generation = 0  # counts the pools started: which one a future ran in
        self._pool: Executor | None = None
        self._started: threading.Event | None = None
        self._failure: BaseException | None = None

    def submit(self, idle: Callable[[], None], fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """`fn(*args)` in a worker; a pool broken by a worker's death gives a future that says so."""
        try:
            return self._ready(idle).submit(fn, *args)
        except BrokenProcessPool as exc:
            future: Future[Any] = Future()
            future.set_exception(exc)
            return future

    def wait(self, future: Future[Any], idle: Callable[[], None]) -> Any:
        """The future's result, calling `idle` every IDLE_SECONDS until it is there."""
        while not future.done():
            idle()
            try:
                return future.result(timeout=IDLE_SECONDS)
            except TimeoutError:
                continue
        return future.result()

    def replace(self, generation: int) -> None:
        """After a worker of pool `generation` died (that pool is broken): the next submit
        starts a new pool, unless one has been started since (the other chunks that were in
        flight beside the one that broke it fail too, and need no pool of their own)."""
        if generation == self.generation:
            self.close()

    def close(self) -> None:
        pool, started = self._pool, self._started
        self._pool = self._started = None
        if started is not None:
            started.wait()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _ready(self, idle: Callable[[], None]) -> Executor:
        if self.count <= 1:
            if self._pool is None:
                self._pool = InlineExecutor()
            return self._pool
        if self._started is None:
            self.generation += 1
            self._started = threading.Event()
            self._failure = None
            threading.Thread(target=self._start, args=(self._started,), name="dupwatch-workers",
                             daemon=True).start()
        while not self._started.wait(IDLE_SECONDS):
            idle()
        if self._failure is not None:
            failure, self._started = self._failure, None
            raise failure
        assert self._pool is not None
        return self._pool

    def _start(self, started: threading.Event) -> None:
        try:
            # forkserver, not fork: the watcher runs threads, and forking a threaded process is unsafe.
            ctx = get_context("forkserver")
            ctx.set_forkserver_preload(["dupwatch.fingerprint", *self.preload])
            pool = ProcessPoolExecutor(max_workers=self.count, mp_context=ctx, initializer=_die_with,
                                       initargs=(os.getpid(),))
            # Every worker up now, not at the first file: a pool starts its processes lazily.
            try:
                for future in [pool.submit(os.getpid) for _ in range(self.count)]:
                    future.result()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            self._pool = pool
        except (OSError, EOFError, BrokenProcessPool) as exc:
            # The forkserver or a worker died before it could say why (an interpreter that
            # cannot start as this user, a sandbox refusing a fork): not a file's fault.
            self._failure = WorkersError(
                f"the decoding processes could not start ({type(exc).__name__}: {exc or 'no reason given'}):"
                f" each starts {sys.executable} again, which must work for this user; --workers 1"
                " decodes in this process instead")
        except BaseException as exc:  # handed to the caller's thread, which raises it
            self._failure = exc
        finally:
            started.set()


def _die_with(owner: int) -> None:
    """In each worker: exit when the process that owns the pool dies, even by kill -9.

    A killed owner never shuts its pool down, and its workers (children of the forkserver, not
    of the owner) would otherwise wait on their pipes forever. A pidfd becomes readable when
    the process it names exits; one daemon thread waits on it.
    """
    try:
        fd = os.pidfd_open(owner)
    except OSError:
        return  # gone already, or a kernel before 5.3: nothing to wait on

    def wait() -> None:
        select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=wait, name="dupwatch-owner", daemon=True).start()
