"""`dupwatch watch` end to end: a real daemon process, real inotify events, a real notify socket.

Each test starts `python -m dupwatch watch` on a folder of real photographs, changes the folder
the way people and tools do (copies, partial downloads renamed when done, moves, new folders),
and reads what the service logs on stderr and sends to its NOTIFY_SOCKET. Every process started
here is killed at the end of its test, whatever happens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from dupwatch.errors import ExitCode
from tests.conftest import open_rgb, run
from tests.receiver import Receiver

SETTLE = 0.3
CONFIG = f"watch:\n  settle_seconds: {SETTLE}\n"


class Daemon:
    """One `dupwatch watch` process: its stderr in a file, its notify datagrams in a socket."""

    def __init__(self, tmp_path: Path, name: str, args: list[str | Path], journal: bool = False,
                 prefix: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        self.stderr = tmp_path / f"{name}.stderr"
        address = tmp_path / f"{name}.sock"
        assert len(str(address)) < 100, "AF_UNIX paths are limited to 108 bytes"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(address))
        self.notified: list[str] = []
        env = {**{k: v for k, v in os.environ.items()
                  if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM")},
               "NOTIFY_SOCKET": str(address), "PYTHONUNBUFFERED": "1", **(env or {})}
        with self.stderr.open("wb") as err:
            if journal:  # what systemd sets when stderr is the journal's stream
                st = os.fstat(err.fileno())
                env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
            self.proc = subprocess.Popen(
                [*prefix, sys.executable, "-m", "dupwatch", "watch", *map(str, args)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 10.0) -> str:
        """The first stderr line matching `pattern` (a regex), waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                if re.search(pattern, line):
                    return line
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"no line matching {pattern!r} in {timeout} s"
                            f" (exit code {self.proc.poll()}); stderr:\n{self.log()}")
            time.sleep(0.05)

    def wait_duplicate(self, path: Path, match: Path, timeout: float = 5.0) -> str:
        pattern = re.escape(f"{path} duplicates {match}")
        return self.wait_log(pattern, timeout)

    def wait_notify(self, message: str, timeout: float = 10.0, after: int = -1) -> int:
        """The index of the first notification after `after` that starts with `message`."""
        deadline = time.monotonic() + timeout
        while True:
            found = [i for i, m in enumerate(self.notified) if i > after and m.startswith(message)]
            if found:
                return found[0]
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {message!r} notification in {timeout} s; got {self.notified};"
                            f" stderr:\n{self.log()}")
            self.sock.settimeout(left)
            try:
                self.notified.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def stop(self, timeout: float = 10.0) -> int:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        assert time.monotonic() - started < timeout
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sock.close()


Start = Callable[..., Daemon]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Starts daemons; each is killed when the test ends, whatever happened."""
    daemons: list[Daemon] = []

    def start_one(*args: str | Path, **kw: Any) -> Daemon:
        daemon = Daemon(tmp_path, f"daemon{len(daemons)}", list(args), **kw)
        daemons.append(daemon)
        return daemon

    yield start_one
    for daemon in daemons:
        daemon.kill()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return path


def duplicates(log: str) -> list[tuple[str, str]]:
    """(path, match) of each duplicate line."""
    found = re.findall(r"dupwatch: (.+?) duplicates (.+?)  \(", log)
    return [(a, b) for a, b in found]


def test_a_duplicate_is_reported_as_it_lands(start: Start, photos: Path, config: Path,
                                             cache: Path) -> None:
    daemon = start("--config", config, "--cache", cache, photos, env={"WATCHDOG_USEC": "2000000"})
    daemon.wait_notify("READY=1")
    daemon.wait_log("caught up: 8 files")
    daemon.wait_notify("WATCHDOG=1", timeout=2)

    # A download: written under a partial name, renamed when complete.
    partial = photos / "astronaut (1).png.part"
    partial.write_bytes((photos / "astronaut.png").read_bytes())
    began = time.monotonic()
    partial.rename(photos / "astronaut (1).png")
    daemon.wait_duplicate(photos / "astronaut (1).png", photos / "astronaut.png")
    assert time.monotonic() - began < 2 + SETTLE
    # A plain copy, and a resized export (near, not exact).
    shutil.copy(photos / "coffee.png", photos / "coffee copy.png")
    daemon.wait_duplicate(photos / "coffee copy.png", photos / "coffee.png")
    small = open_rgb(photos / "chelsea.png")
    small.resize((small.width // 3, small.height // 3), Image.Resampling.LANCZOS).save(
        photos / "chelsea-small.jpg", quality=85)
    assert "(near, cosine" in daemon.wait_duplicate(photos / "chelsea-small.jpg", photos / "chelsea.png")
    # A folder made after the start is watched too.
    later = photos / "2025" / "trip"
    later.mkdir(parents=True)
    shutil.copy(photos / "rocket.jpg", later / "IMG_0001.jpg")
    daemon.wait_duplicate(later / "IMG_0001.jpg", photos / "rocket.jpg")
    # A partial download alone is never looked at.
    shutil.copy(photos / "camera.png", photos / "camera.png.part")
    shutil.copy(photos / "retina.jpg", photos / "retina again.jpg")  # processed after the .part
    daemon.wait_duplicate(photos / "retina again.jpg", photos / "retina.jpg")
    assert ".part" not in daemon.log()
    assert len(duplicates(daemon.log())) == 5

    daemon.wait_notify("STATUS=0 queued, 13 files seen, 5 duplicates found")
    # Pinged at half the watchdog interval all along: at least once a second here.
    last = max(i for i, m in enumerate(daemon.notified) if m == "WATCHDOG=1")
    daemon.wait_notify("WATCHDOG=1", timeout=1.5, after=last)
    assert daemon.stop() == ExitCode.OK
    daemon.wait_notify("STOPPING=1")
    assert "stopped: 13 files seen, 5 duplicates found" in daemon.log()


def test_restart_catches_up_once(start: Start, photos: Path, config: Path, cache: Path) -> None:
    first = start("--config", config, "--cache", cache, photos)
    first.wait_log("caught up: 8 files")
    assert first.stop() == ExitCode.OK

    # While the service is down: a copy lands, a photo is deleted.
    shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
    (photos / "camera.png").unlink()
    second = start("--config", config, "--cache", cache, photos)
    line = second.wait_log("caught up:")
    assert "1 indexed, 7 unchanged" in line and "1 deleted file forgotten" in line
    assert duplicates(second.log()) == [(str(photos / "zz coffee copy.png"), str(photos / "coffee.png"))]
    assert second.stop() == ExitCode.OK

    third = start("--config", config, "--cache", cache, photos)
    assert "0 indexed, 8 unchanged" in third.wait_log("caught up:")
    assert duplicates(third.log()) == []
    assert third.stop() == ExitCode.OK


def test_a_scan_beside_the_watcher_is_followed(start: Start, photos: Path, config: Path, cache: Path,
                                              tmp_path: Path) -> None:
    """`dupwatch scan` of another folder into the watcher's cache while the watcher runs: a resized
    copy of a photo that scan indexed, landing in the watched folder, is told against it. Main's
    watcher searched only what its cache held when it started (an exact copy was found, by its
    bytes; a near one was not)."""
    from tests.conftest import SAMPLES

    daemon = start("--config", config, "--cache", cache, photos)
    daemon.wait_log("caught up: 8 files")
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(SAMPLES / "ihc.png", archive / "ihc.png")
    assert run("scan", archive, "--cache", cache).code == ExitCode.OK
    small = open_rgb(archive / "ihc.png")
    small.resize((small.width // 2, small.height // 2), Image.Resampling.LANCZOS).save(
        photos / "ihc-small.jpg", quality=85)
    daemon.wait_duplicate(photos / "ihc-small.jpg", archive / "ihc.png")
    assert daemon.stop() == ExitCode.OK
    assert duplicates(daemon.log()) == [(str(photos / "ihc-small.jpg"), str(archive / "ihc.png"))]


def test_sigterm_during_a_burst_loses_nothing_and_repeats_nothing(
        start: Start, photos: Path, config: Path, cache: Path) -> None:
    first = start("--config", config, "--cache", cache, photos)
    first.wait_log("caught up: 8 files")
    burst = photos / "burst"
    burst.mkdir()
    copies = {str(burst / f"{n} {name}"): str(photos / name)
              for n in range(6) for name in sorted(os.listdir(photos)) if name != "burst"}
    for copy, original in copies.items():
        shutil.copy(original, copy)
    first.wait_log(re.escape(f" duplicates {photos}"))
    assert first.stop() == ExitCode.OK  # mid-burst, most likely: either way nothing may be lost

    second = start("--config", config, "--cache", cache, photos)
    second.wait_log("caught up:")
    assert second.stop() == ExitCode.OK
    reported = duplicates(first.log()) + duplicates(second.log())
    assert sorted(path for path, _ in reported) == sorted(copies)  # each once
    assert all(copies[path] == match for path, match in reported)


def test_a_moved_file_keeps_its_identity(start: Start, photos: Path, config: Path, cache: Path) -> None:
    shutil.copy(photos / "coffee.png", photos / "coffee copy.png")  # a known pair
    (photos / "trip").mkdir()
    (photos / "retina.jpg").rename(photos / "trip" / "retina.jpg")
    daemon = start("--config", config, "--cache", cache, photos)
    daemon.wait_log("caught up: 9 files")
    assert len(duplicates(daemon.log())) == 1
    with sqlite3.connect(cache) as db:
        ids = dict(db.execute("SELECT path, id FROM files").fetchall())

    (photos / "astronaut.png").rename(photos / "astronaut renamed.png")
    (photos / "sorted").mkdir()
    (photos / "chelsea.png").rename(photos / "sorted" / "chelsea.png")
    (photos / "coffee copy.png").rename(photos / "sorted" / "coffee copy.png")
    (photos / "trip").rename(photos / "trip 2024")
    time.sleep(SETTLE + 1.0)
    shutil.copy(photos / "camera.png", photos / "zz camera copy.png")  # processed after the moves
    daemon.wait_duplicate(photos / "zz camera copy.png", photos / "camera.png")
    assert duplicates(daemon.log())[1:] == [(str(photos / "zz camera copy.png"), str(photos / "camera.png"))]
    assert daemon.stop() == ExitCode.OK

    with sqlite3.connect(cache) as db:
        after = dict(db.execute("SELECT path, id FROM files").fetchall())
        pairs = db.execute("SELECT count(*) FROM pairs").fetchone()[0]
    for old, new in [("astronaut.png", "astronaut renamed.png"), ("chelsea.png", "sorted/chelsea.png"),
                     ("coffee copy.png", "sorted/coffee copy.png"),
                     ("trip/retina.jpg", "trip 2024/retina.jpg")]:
        assert after[str(photos / new)] == ids[str(photos / old)], new
        assert str(photos / old) not in after
    assert pairs == 2  # the moved copy kept its pair


def test_sighup_with_a_broken_config_keeps_the_old_one(start: Start, photos: Path, config: Path,
                                                       cache: Path) -> None:
    daemon = start("--config", config, "--cache", cache, photos, journal=True)
    daemon.wait_notify("READY=1")
    first = daemon.wait_log("caught up:")
    assert first.startswith("<6>dupwatch: caught up")  # journald's priority, and no timestamp

    config.write_text("watch:\n  settle_seconds: -1\n")
    daemon.proc.send_signal(signal.SIGHUP)
    error = daemon.wait_log("reload failed")
    assert error.startswith("<3>dupwatch: ") and "watch.settle_seconds:" in error
    # RELOADING=1, then READY=1 once the reload is over.
    daemon.wait_notify("READY=1", after=daemon.wait_notify("RELOADING=1\nMONOTONIC_USEC="))
    shutil.copy(photos / "coffee.png", photos / "coffee copy.png")
    daemon.wait_duplicate(photos / "coffee copy.png", photos / "coffee.png")

    # A good config is taken, without a restart.
    config.write_text("watch:\n  settle_seconds: 0.2\nscan:\n  extensions: [.png]\n")
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_log("reloaded the config")
    shutil.copy(photos / "rocket.jpg", photos / "rocket copy.jpg")  # .jpg is no longer watched
    shutil.copy(photos / "chelsea.png", photos / "chelsea copy.png")
    daemon.wait_duplicate(photos / "chelsea copy.png", photos / "chelsea.png")
    assert daemon.proc.poll() is None
    assert "rocket copy" not in daemon.log()
    assert daemon.stop() == ExitCode.OK


def test_polled_folders_report_too(start: Start, photos: Path, tmp_path: Path, cache: Path) -> None:
    config = tmp_path / "polling.yaml"
    config.write_text(f"watch:\n  settle_seconds: {SETTLE}\n  polling: [{photos}]\n  poll_interval: 0.3\n")
    daemon = start("--config", config, "--cache", cache, photos)
    assert "1 by polling every 0.3 s" in daemon.wait_log("watching")
    daemon.wait_log("caught up:")
    (photos / "new").mkdir()
    shutil.copy(photos / "coffee.png", photos / "new" / "coffee.png")
    daemon.wait_duplicate(photos / "new" / "coffee.png", photos / "coffee.png")
    assert daemon.stop() == ExitCode.OK


def _can_limit_inotify() -> bool:
    """A user namespace where the inotify watch limit can be lowered, without touching the host's."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                            "echo 3 > /proc/sys/user/max_inotify_watches"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_limit_inotify(), reason="needs unshare and user namespaces (util-linux)")
def test_the_inotify_watch_limit_falls_back_to_polling(start: Start, photos: Path, config: Path,
                                                       cache: Path) -> None:
    for n in range(4):
        (photos / f"folder {n}").mkdir()
    config.write_text(f"watch:\n  settle_seconds: {SETTLE}\n  poll_interval: 0.3\n")
    # Five folders, three watches: inotify can watch the tree only in part.
    limit = ("unshare", "--user", "--map-root-user", "sh", "-c",
             'echo 3 > /proc/sys/user/max_inotify_watches && exec "$@"', "sh")
    daemon = start("--config", config, "--cache", cache, photos, prefix=limit)
    warning = daemon.wait_log("inotify watch limit")
    assert "sysctl fs.inotify.max_user_watches=524288" in warning
    assert "1 by polling" in daemon.wait_log("watching")
    daemon.wait_log("caught up:")
    shutil.copy(photos / "coffee.png", photos / "folder 3" / "coffee.png")
    daemon.wait_duplicate(photos / "folder 3" / "coffee.png", photos / "coffee.png")
    assert daemon.stop() == ExitCode.OK


def test_nothing_to_watch_is_a_usage_error(tmp_path: Path, cache: Path) -> None:
    result = run("watch", "--cache", cache)
    assert result.code == ExitCode.USAGE
    assert "give PATH arguments, or set watch.paths" in result.err
    missing = tmp_path / "nowhere"
    assert run("watch", "--cache", cache, missing).code == ExitCode.ERROR
    config = tmp_path / "config.yaml"
    config.write_text(f"watch:\n  paths: [{tmp_path}, {missing}]\n")
    result = run("watch", "--config", config, "--cache", cache)
    assert result.code == ExitCode.USAGE
    assert "watch.paths[1]: no such folder" in result.err


def test_kill_9_with_alerts_pending_loses_no_notice(start: Start, photos: Path, tmp_path: Path,
                                                    cache: Path) -> None:
    # The alert target is down: its port is taken, never listened on (connection refused).
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    notices_log = tmp_path / "notices.jsonl"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG + f"notices:\n  log: {{path: {notices_log}}}\n"
                      f"  apprise: {{urls: ['json://127.0.0.1:{port}/alerts']}}\n"
                      "  burst: {quiet_seconds: 0.2}\n")
    first = start("--config", config, "--cache", cache, photos)
    first.wait_log("caught up: 8 files")
    copies = {str(photos / f"zz {n} {name}"): str(photos / name)
              for n in range(3) for name in ("coffee.png", "rocket.jpg")}
    for copy, original in copies.items():
        shutil.copy(original, copy)
    for copy, original in copies.items():
        first.wait_duplicate(Path(copy), Path(original))
    first.wait_log(r"notices.apprise.urls\[0\] \(json\): not delivered")  # alerts are pending
    first.proc.kill()  # SIGKILL: no drain, no goodbye
    first.proc.wait()

    with sqlite3.connect(cache) as db:
        pairs = set(db.execute("SELECT f.path, m.path FROM pairs p JOIN files f ON f.id = p.file_id"
                               " JOIN files m ON m.id = p.match_id").fetchall())
    assert pairs == set(copies.items())  # what the cache recorded...

    taken.close()
    receiver = Receiver(port=port)  # the target is back
    try:
        second = start("--config", config, "--cache", cache, photos)
        second.wait_log("caught up: 14 files")
        [alert] = receiver.wait(1)  # ...was never dropped: late, as one summary of the burst
        assert alert["title"] == "6 duplicate photos"
        assert second.stop() == ExitCode.OK
    finally:
        receiver.stop()
    listed = run("notices", "--config", config, "--cache", cache, "--json")
    logged = [json.loads(line) for line in listed.out.splitlines()]
    assert {(n["path"], n["match"]) for n in logged} == pairs  # ...and the log has every one, once
    assert len(logged) == len(pairs)
    assert duplicates(second.log()) == []  # nothing found twice
