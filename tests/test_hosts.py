"""Several hosts on one PostgreSQL cache (issue 16): two real `dupwatch watch` processes with their
own host names and folders; a photo landing on one that duplicates a photo another host indexed
after this one started is told by this one, named `host:path`.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from PIL import Image

from dupwatch.errors import ExitCode
from tests.conftest import SAMPLES
from tests.pg import pg_server, pg_url
from tests.test_watch import CONFIG, Daemon, Start, duplicates, start

__all__ = ["pg_server", "pg_url", "start"]  # fixtures, used by name


def indexed(url: str, host: str, path: Path, timeout: float = 10.0) -> None:
    """Wait until `host`'s watcher has committed `path` to the shared cache."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute("SELECT 1 FROM files WHERE host = %s AND path = %s",
                               (host, str(path))).fetchone():
            if time.monotonic() > deadline:
                pytest.fail(f"{host} did not index {path} in {timeout} s")
            time.sleep(0.05)


def watcher(start: Start, tmp_path: Path, url: str, host: str) -> tuple[Daemon, Path]:
    folder = tmp_path / host
    folder.mkdir()
    config = tmp_path / f"{host}.yaml"
    config.write_text(CONFIG + f"cache:\n  url: {url}\n  host: {host}\n  path: {tmp_path / host}-cache\n")
    daemon = start("--config", config, folder)
    daemon.wait_log("caught up", timeout=60)
    return daemon, folder


def test_a_copy_of_a_photo_another_host_indexed_since_this_one_started_is_told(
        start: Start, tmp_path: Path, pg_url: str) -> None:
    nas, nas_photos = watcher(start, tmp_path, pg_url, "nas")
    desk, desk_photos = watcher(start, tmp_path, pg_url, "desk")

    shutil.copy(SAMPLES / "chelsea.png", nas_photos / "chelsea.png")
    indexed(pg_url, "nas", nas_photos / "chelsea.png")
    small = desk_photos / "chelsea small.jpg"
    with Image.open(SAMPLES / "chelsea.png") as im:
        im.convert("RGB").resize((300, 200)).save(small, quality=70)
    desk.wait_duplicate(small, Path(f"nas:{nas_photos / 'chelsea.png'}"))

    # And the other way: the NAS follows the desk's files as well.
    shutil.copy(SAMPLES / "astronaut.png", desk_photos / "astronaut.png")
    indexed(pg_url, "desk", desk_photos / "astronaut.png")
    recompressed = nas_photos / "astronaut.jpg"
    with Image.open(SAMPLES / "astronaut.png") as im:
        im.convert("RGB").resize((256, 256)).save(recompressed, quality=60)
    nas.wait_duplicate(recompressed, Path(f"desk:{desk_photos / 'astronaut.png'}"))

    time.sleep(1)  # anything told twice would be told by now
    assert nas.stop() == ExitCode.OK and desk.stop() == ExitCode.OK
    assert duplicates(desk.log()) == [(str(small), f"nas:{nas_photos / 'chelsea.png'}")]
    assert duplicates(nas.log()) == [(str(recompressed), f"desk:{desk_photos / 'astronaut.png'}")]
    assert "Traceback" not in nas.log() + desk.log()
