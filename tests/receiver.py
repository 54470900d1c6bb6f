"""A real HTTP receiver on 127.0.0.1 for Apprise's json:// alerts: what arrived, and its status."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """Records each JSON body posted to it; answers 500 to the first `fail` requests."""

    def __init__(self, port: int = 0, fail: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # of each body, in the same order
        self.failed = 0
        self._fail = fail
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    if receiver.failed < receiver._fail:
                        receiver.failed += 1
                        status = 500
                    else:
                        receiver.bodies.append({"path": self.path, **json.loads(body)})
                        receiver.headers.append(dict(self.headers))
                        status = 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "alerts") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def wait(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """The bodies received, once there are at least `count` (failing the test past `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.bodies)} alerts received in {timeout} s, not {count}:"
                                     f" {self.bodies}")
            time.sleep(0.05)
        return list(self.bodies)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
