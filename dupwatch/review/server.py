"""The page's HTTP server: waitress (pure Python, threaded WSGI), alone or in `dupwatch watch`'s process.

Why waitress: no C extensions and no dependencies (a Raspberry Pi installs it as it is), a
production server that Flask's own deployment guide names, and it runs in a background thread
with a clean close, which is what `dupwatch watch` needs to serve the page beside its loop.
"""

from __future__ import annotations

import logging
import threading

from dupwatch.config import Config
from dupwatch.errors import ConfigError, DupwatchError
from dupwatch.review.auth import check_bind
from dupwatch.review.thumbs import Pruned, prune
from dupwatch.store import open_store

log = logging.getLogger("dupwatch")
THREADS = 4  # thumbnails are made in these; a phone asks for a page's worth at once
PRUNE_SECONDS = 24 * 3600  # how often the thumbnail folder is brought back in bounds
RETRY_PRUNE_SECONDS = 600  # after a try that could not read the cache


class ReviewServer:
    def __init__(self, config: Config, bind: str | None = None) -> None:
        from waitress.server import create_server

        from dupwatch.review.app import create_app

        # waitress warns "Task queue depth is N" whenever requests wait for a thread, which a
        # page's worth of thumbnails asked at once always does: a queue, not a problem.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self.bind = bind or config.review.bind
        host, port = check_bind(config.review, self.bind)
        app = create_app(config)
        self._config = config
        self._closed = threading.Event()
        try:
            self._server = create_server(app, host=host, port=port, threads=THREADS, ident="dupwatch",
                                         clear_untrusted_proxy_headers=True)
        except OSError as exc:
            problem = f"cannot listen on {self.bind}: {exc.strerror or exc}"
            if bind:
                raise DupwatchError(f"--bind: {problem}") from None
            raise ConfigError("review.bind", problem) from None
        self._thread: threading.Thread | None = None
        shown_host = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown_host}:{self._server.effective_port}/"

    def serve(self) -> None:
        """Serve in this thread until `close`; the thumbnails are pruned beside it."""
        log.info("review page on %s", self.url)
        threading.Thread(target=self._prune_daily, name="dupwatch-thumbnails", daemon=True).start()
        self._server.run()

    def start(self) -> None:
        """Serve from a background thread."""
        self._thread = threading.Thread(target=self._run, name="dupwatch-review", daemon=True)
        self._thread.start()

    def _prune_daily(self) -> None:
        while True:
            wait = PRUNE_SECONDS
            try:
                self.prune()
            except DupwatchError as exc:  # the cache's server is away, say: one line, and later again
                log.warning("thumbnails not pruned: %s; trying again in %d minutes", exc,
                            RETRY_PRUNE_SECONDS // 60)
                wait = RETRY_PRUNE_SECONDS
            except Exception:
                log.exception("pruning the thumbnails failed")
            if self._closed.wait(wait):
                return

    def prune(self) -> Pruned:
        """Thumbnails of contents no longer indexed go, then the least recently shown past
        `review.thumbnails_max_mb`."""
        cache = self._config.cache.resolved()
        store = open_store(self._config.cache)
        try:
            indexed = store.content_hashes()
        finally:
            store.close()
        root = self._config.review.thumbnail_dir(cache)
        done = prune(root, indexed, self._config.review.thumbnails_max_mb * 2**20)
        if done.removed:
            log.info("thumbnails: removed %d (%.1f MiB), %.1f MiB kept in %s", done.removed,
                     done.freed / 2**20, done.kept / 2**20, root)
        return done

    def _run(self) -> None:
        try:
            self.serve()
        except Exception:
            log.exception("the review page stopped")

    def close(self) -> None:
        from waitress import wasyncore

        self._closed.set()
        server = self._server
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)
        wasyncore.close_all(server._map)  # the serving loop ends when its map is empty
        if self._thread is not None:
            self._thread.join(5)
