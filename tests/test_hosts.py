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
        im.convert("RGB").save(recompressed, quality=60)  # as many pixels: the PNG is kept
    nas.wait_duplicate(recompressed, Path(f"desk:{desk_photos / 'astronaut.png'}"))

    time.sleep(1)  # anything told twice would be told by now
    assert nas.stop() == ExitCode.OK and desk.stop() == ExitCode.OK
    assert duplicates(desk.log()) == [(str(small), f"nas:{nas_photos / 'chelsea.png'}")]
    assert duplicates(nas.log()) == [(str(recompressed), f"desk:{desk_photos / 'astronaut.png'}")]
    assert "Traceback" not in nas.log() + desk.log()


def test_a_host_killed_mid_burst_loses_no_pair_and_tells_none_twice(
        start: Start, tmp_path: Path, pg_url: str) -> None:
    """Copies land on both hosts while the NAS's watcher is killed (SIGKILL) and started again:
    each copy is recorded as a duplicate once, in one notice, whichever host found it."""
    import psycopg

    nas, nas_photos = watcher(start, tmp_path, pg_url, "nas")
    desk, desk_photos = watcher(start, tmp_path, pg_url, "desk")
    originals = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"]
    for name in originals:
        shutil.copy(SAMPLES / name, nas_photos / name)
        indexed(pg_url, "nas", nas_photos / name)
    copies: list[tuple[str, Path]] = []
    for n in range(24):
        host, folder = ("nas", nas_photos) if n % 2 else ("desk", desk_photos)
        copy = folder / f"copy-{n:02d}.jpg"
        with Image.open(SAMPLES / originals[n % len(originals)]) as im:
            im.convert("RGB").resize((im.width * 3 // 4, im.height * 3 // 4)).save(copy, quality=50 + n)
        copies.append((host, copy))
        if n == 12:
            nas.proc.kill()  # SIGKILL, mid-burst: whatever it had not committed is gone with it
            nas.proc.wait()
        time.sleep(0.05)
    nas = start("--config", tmp_path / "nas.yaml", nas_photos)
    nas.wait_log("caught up", timeout=60)
    for host, copy in copies:
        indexed(pg_url, host, copy, timeout=30)
    time.sleep(1.5)  # a pair told twice would be recorded by now
    with psycopg.connect(pg_url) as conn:
        told = conn.execute("SELECT n.path, count(*) FROM notices n GROUP BY n.path").fetchall()
    assert sorted(told) == sorted((str(copy), 1) for _, copy in copies)
    assert nas.stop() == ExitCode.OK and desk.stop() == ExitCode.OK
    assert "Traceback" not in nas.log() + desk.log()
