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

log = logging.getLogger("dupwatch")
THREADS = 4  # thumbnails are made in these; a phone asks for a page's worth at once


class ReviewServer:
    def __init__(self, config: Config, bind: str | None = None) -> None:
        from waitress.server import create_server

        from dupwatch.review.app import create_app

        self.bind = bind or config.review.bind
        host, port = check_bind(config.review, self.bind)
        app = create_app(config)
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
        """Serve in this thread until `close`."""
        log.info("review page on %s", self.url)
        self._server.run()

    def start(self) -> None:
        """Serve from a background thread."""
        self._thread = threading.Thread(target=self._run, name="dupwatch-review", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.serve()
        except Exception:
            log.exception("the review page stopped")

    def close(self) -> None:
        from waitress import wasyncore

        server = self._server
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)
        wasyncore.close_all(server._map)  # the serving loop ends when its map is empty
        if self._thread is not None:
            self._thread.join(5)
