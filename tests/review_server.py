"""`dupwatch review` as a real process on 127.0.0.1 (port chosen by the kernel), for the tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest


class ReviewProcess:
    def __init__(self, tmp_path: Path, *args: str | Path) -> None:
        self.stderr = tmp_path / f"review-{time.monotonic_ns()}.stderr"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dupwatch", "review", "--bind", "127.0.0.1:0", *map(str, args)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.url = self._wait_url()

    def _wait_url(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"review page on (http://\S+)", self.stderr.read_text(errors="replace"))
            if found:
                return found[1]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"dupwatch review did not start: {self.stderr.read_text(errors='replace')}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
