"""A PostgreSQL cache that goes away and comes back (issue 16): the watcher logs it once, waits
(answering its watchdog, stoppable at once), and goes on; no notice is lost, none told twice.

Real daemons (`tests/test_watch.py`'s `start`) on a real server of each test's own, stopped and
started again with its own pg_ctl.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

from dupwatch.config import CacheConfig
from dupwatch.errors import CacheUnavailable, DupwatchError, ExitCode
from dupwatch.store import open_store
from tests.pg import OwnServer, new_database, own_pg, pg_server, pg_url
from tests.test_watch import CONFIG, Daemon, Start, duplicates, start

__all__ = ["own_pg", "pg_server", "pg_url", "start"]  # fixtures, used by name

WAITING = r"cache postgresql://\S+: unreachable \(.+\); waiting for it"


def notice_config(tmp_path: Path) -> tuple[Path, Path]:
    notices = tmp_path / "notices.jsonl"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG + f"notices:\n  log: {{path: {notices}}}\n")
    return config, notices


def logged(notices: Path, path: Path) -> list[dict[str, object]]:
    """The notice log's lines about `path`."""
    if not notices.exists():
        return []
    lines = [json.loads(line) for line in notices.read_text().splitlines() if line.strip()]
    return [n for n in lines if n["path"] == str(path)]


def wait_logged(notices: Path, path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not logged(notices, path):
        if time.monotonic() > deadline:
            pytest.fail(f"no notice about {path} in {notices} after {timeout} s")
        time.sleep(0.05)


def lines(daemon: Daemon, pattern: str) -> list[str]:
    return [line for line in daemon.log().splitlines() if re.search(pattern, line)]


def test_a_server_that_goes_away_and_comes_back_loses_no_duplicate(
        start: Start, photos: Path, tmp_path: Path, own_pg: OwnServer) -> None:
    url = new_database(own_pg.url)
    config, notices = notice_config(tmp_path)
    daemon = start("--config", config, "--cache", url, photos, env={"WATCHDOG_USEC": "2000000"})
    daemon.wait_log("caught up: 8 files", timeout=60)

    own_pg.stop()
    copy = photos / "copy of chelsea.png"
    shutil.copy(photos / "chelsea.png", copy)
    daemon.wait_log(WAITING)
    waiting = daemon.wait_notify("STATUS=waiting for the cache")
    daemon.wait_notify("WATCHDOG=1", timeout=2, after=waiting)  # waiting, not hung
    time.sleep(2)  # a few tries at reconnecting
    assert daemon.proc.poll() is None, daemon.log()
    assert len(lines(daemon, WAITING)) == 1  # said once, not at every try
    assert duplicates(daemon.log()) == []

    own_pg.start()
    daemon.wait_log("reachable again", timeout=20)
    daemon.wait_duplicate(copy, photos / "chelsea.png", timeout=10)
    wait_logged(notices, copy)
    time.sleep(1)  # anything told twice would be told by now
    assert daemon.stop() == ExitCode.OK
    log = daemon.log()
    assert duplicates(log) == [(str(copy), str(photos / "chelsea.png"))]
    assert len(logged(notices, copy)) == 1
    assert "Traceback" not in log


def test_a_watcher_started_while_the_server_is_down_waits_for_it(
        start: Start, photos: Path, tmp_path: Path, own_pg: OwnServer) -> None:
    url = new_database(own_pg.url)
    config, notices = notice_config(tmp_path)
    own_pg.stop()
    copy = photos / "copy of coffee.png"
    shutil.copy(photos / "coffee.png", copy)
    daemon = start("--config", config, "--cache", url, photos, env={"WATCHDOG_USEC": "2000000"})
    daemon.wait_log(WAITING, timeout=20)
    daemon.wait_notify("READY=1")  # started: systemd's start timeout does not kill it
    waiting = daemon.wait_notify("STATUS=waiting for the cache")
    daemon.wait_notify("WATCHDOG=1", timeout=2, after=waiting)
    time.sleep(2)
    assert daemon.proc.poll() is None, daemon.log()
    assert len(lines(daemon, WAITING)) == 1

    own_pg.start()
    daemon.wait_log("caught up: 9 files", timeout=60)
    daemon.wait_duplicate(copy, photos / "coffee.png")
    wait_logged(notices, copy)
    assert daemon.stop() == ExitCode.OK
    log = daemon.log()
    assert duplicates(log) == [(str(copy), str(photos / "coffee.png"))]
    assert len(logged(notices, copy)) == 1
    assert "Traceback" not in log


def test_sigterm_while_waiting_for_the_server_stops_at_once(start: Start, photos: Path,
                                                            tmp_path: Path) -> None:
    config, _ = notice_config(tmp_path)
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    daemon = start("--config", config, "--cache", f"postgresql://dupwatch@/dupwatch?host={nowhere}", photos)
    daemon.wait_log(WAITING)
    started = time.monotonic()
    assert daemon.stop(timeout=10) == ExitCode.OK
    assert time.monotonic() - started < 2
    log = daemon.log()
    assert "Traceback" not in log
    assert re.search(r"stopped: 0 files seen", log), log


def test_a_server_that_refuses_stays_fatal(start: Start, photos: Path, tmp_path: Path,
                                           pg_server: str) -> None:
    missing = pg_server.replace("/postgres?", "/nosuchdb?")
    with pytest.raises(DupwatchError, match="does not exist; create it") as refused:
        open_store(CacheConfig(url=missing))
    assert not isinstance(refused.value, CacheUnavailable)  # nothing to wait for
    config, _ = notice_config(tmp_path)
    daemon = start("--config", config, "--cache", missing, photos)
    assert daemon.proc.wait(30) == ExitCode.ERROR
    assert "does not exist" in daemon.log() and "waiting" not in daemon.log()


def test_a_lost_connection_is_cache_unavailable(own_pg: OwnServer) -> None:
    store = open_store(CacheConfig(url=new_database(own_pg.url), host="h"))
    assert store.count() == 0
    own_pg.stop()
    with pytest.raises(CacheUnavailable, match=r"terminating connection"):
        store.count()
    store.close()  # a lost connection is let go without a second error
    with pytest.raises(CacheUnavailable, match="cannot open cache"):
        open_store(CacheConfig(url=own_pg.url))


def test_connections_the_server_ends_are_opened_again(start: Start, photos: Path, tmp_path: Path,
                                                      pg_url: str) -> None:
    import psycopg

    config, notices = notice_config(tmp_path)
    daemon = start("--config", config, "--cache", pg_url, photos)
    daemon.wait_log("caught up: 8 files", timeout=60)
    database = pg_url.partition("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(pg_url, autocommit=True) as admin:  # what an operator or a failover does
        ended = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                              " WHERE datname = %s AND pid <> pg_backend_pid()", (database,)).fetchone()
    assert ended is not None and ended[0] >= 2  # the watcher's and the outbox's
    copy = photos / "copy of rocket.jpg"
    shutil.copy(photos / "rocket.jpg", copy)
    daemon.wait_duplicate(copy, photos / "rocket.jpg", timeout=15)
    wait_logged(notices, copy)
    time.sleep(1)
    assert daemon.stop() == ExitCode.OK
    log = daemon.log()
    assert len(lines(daemon, WAITING)) == 1 and "reachable again" in log
    assert duplicates(log) == [(str(copy), str(photos / "rocket.jpg"))]
    assert len(logged(notices, copy)) == 1
    assert "Traceback" not in log


def test_the_review_page_of_a_server_that_is_down_says_so(tmp_path: Path, own_pg: OwnServer) -> None:
    """Its thumbnails' pruning at start finds no server: one line, no traceback; the page says
    so (503), and serves again once the server is back."""
    import urllib.error
    import urllib.request

    from tests.review_server import ReviewProcess

    url = new_database(own_pg.url)
    open_store(CacheConfig(url=url, host="h")).close()
    own_pg.stop()
    server = ReviewProcess(tmp_path, "--cache", url)
    try:
        deadline = time.monotonic() + 10
        while "thumbnails" not in server.stderr.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(2):
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(server.url, timeout=10)  # noqa: S310
            assert answer.value.code == 503 and "cannot open cache" in answer.value.read().decode()
        own_pg.start()
        with urllib.request.urlopen(server.url, timeout=10) as page:  # noqa: S310
            assert page.status == 200
    finally:
        server.kill()
    log = server.stderr.read_text()
    assert "Traceback" not in log
    assert re.search(r"thumbnails not pruned: cannot open cache", log), log
    assert len(re.findall(r"review page: cannot open cache", log)) == 1, log  # said once, not a page
    assert "review page: the cache is back" in log
