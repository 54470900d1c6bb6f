"""Notices: every duplicate found reaches the log, sidecars, XMP tags, Apprise and the exec hook.

Alerts go through Apprise to a real HTTP receiver on 127.0.0.1; the hook is a real program; XMP
sidecars are read back with exiftool; the outbox is the real SQLite cache.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dupwatch import config as configuration
from dupwatch.config import BurstConfig, CacheConfig, LogSinkConfig
from dupwatch.errors import ConfigError, ExitCode
from dupwatch.record import Match, Notice
from dupwatch.sinks import log as notice_log
from dupwatch.sinks.apprise import AppriseTarget
from dupwatch.sinks.base import Summary
from dupwatch.sinks.burst import Burst
from dupwatch.sinks.log import NoticeLog
from dupwatch.sinks.outbox import Outbox
from dupwatch.store.migrations import MIGRATIONS
from dupwatch.store.sqlite import SqliteStore
from tests.conftest import BEFORE_SCHEMA_6, run, run_process
from tests.receiver import Receiver

# A file name that a shell would split, expand and run: it must reach the hook as one argument.
NASTY = "zz coffee \"quoted\" 'single' $(touch PWNED) `id` ;\nnew line.png"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def write_config(tmp_path: Path, notices: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"notices": notices}))
    return path


def hook_script(tmp_path: Path) -> tuple[list[str], Path]:
    """A real program that records its arguments and stdin, one JSON line per run."""
    out = tmp_path / "hook.jsonl"
    script = tmp_path / "hook.py"
    script.write_text("import json, sys\n"
                      f"with open({str(out)!r}, 'a') as f:\n"
                      "    f.write(json.dumps({'argv': sys.argv[1:], 'stdin': sys.stdin.read()}) + '\\n')\n")
    return [sys.executable, str(script)], out


def hook_runs(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def log_path(tmp_path: Path, cache: Path) -> Path:
    """The notice log of the (not default) cache `cache`: its own, named after its identity."""
    identity = LogSinkConfig.cache_identity(CacheConfig(path=cache))
    return tmp_path / "xdg-state" / "dupwatch" / "log" / f"notices-{identity}.jsonl"


def test_every_duplicate_reaches_every_sink(tmp_path: Path, photos: Path, cache: Path,
                                            receiver: Receiver) -> None:
    shutil.copy(photos / "coffee.png", photos / NASTY)
    shutil.copy(photos / "rocket.jpg", photos / "zz rocket copy.jpg")
    program, runs = hook_script(tmp_path)
    config = write_config(tmp_path, {
        "sidecar": {"enabled": True},
        "apprise": {"urls": [receiver.url("phone")]},
        "exec": {"command": [*program, "{event}", "{path}", "{match}", "{kind}", "{score}"]},
    })
    result = run("scan", photos, "--config", config, "--cache", cache, "--json")
    assert result.code == ExitCode.OK
    found = {(d["path"], d["match"]) for d in result.events("duplicate")}
    assert found == {(str(photos / NASTY), str(photos / "coffee.png")),
                     (str(photos / "zz rocket copy.jpg"), str(photos / "rocket.jpg"))}

    # The log: the `scan --json` record, plus when and which notice.
    logged = [json.loads(line) for line in log_path(tmp_path, cache).read_text().splitlines()]
    assert [{k: v for k, v in r.items() if k not in ("found_at", "id", "cache")} for r in logged] == \
        result.events("duplicate")
    assert [r["id"] for r in logged] == [1, 2]
    assert {r["cache"] for r in logged} == {LogSinkConfig.cache_identity(CacheConfig(path=cache))}
    listed = run("notices", "--config", config, "--cache", cache, "--json")
    assert [json.loads(line) for line in listed.out.splitlines()] == \
        [{k: v for k, v in r.items() if k != "cache"} for r in logged]

    # Apprise, through a real HTTP request: one alert per duplicate (two is not a burst).
    bodies = receiver.bodies
    assert len(bodies) == 2 and {b["path"] for b in bodies} == {"/phone"}
    assert bodies[1]["title"] == "Duplicate photo: zz rocket copy.jpg"
    assert f"{photos / 'zz rocket copy.jpg'}\nduplicates {photos / 'rocket.jpg'}" in bodies[1]["message"]
    assert "\\n" in bodies[0]["message"]  # the newline in the name is shown escaped, not obeyed

    # The hook: each file name is one argument, exactly as on disk; nothing was run by a shell.
    [first, second] = hook_runs(runs)
    assert first["argv"] == ["duplicate", str(photos / NASTY), str(photos / "coffee.png"), "exact", "1.0"]
    assert json.loads(first["stdin"])["path"] == str(photos / NASTY)
    assert second["argv"][1] == str(photos / "zz rocket copy.jpg")
    assert not list(tmp_path.rglob("PWNED")) and not (Path.cwd() / "PWNED").exists()

    # dupwatch's own sidecar, in the state dir (never *.json beside the photos).
    state = tmp_path / "xdg-state" / "dupwatch" / "sidecars"
    sidecar = state / (str(photos / "zz rocket copy.jpg")[1:] + ".json")
    assert json.loads(sidecar.read_text())["match"] == str(photos / "rocket.jpg")
    assert not list(photos.rglob("*.json"))

    # A second scan finds the same pairs known: nothing is told twice, anywhere.
    again = run("scan", photos, "--config", config, "--cache", cache, "--json")
    assert again.events("duplicate") == []
    assert len(log_path(tmp_path, cache).read_text().splitlines()) == 2
    assert len(receiver.bodies) == 2 and len(hook_runs(runs)) == 2


def test_a_burst_is_one_summary_alert(tmp_path: Path, photos: Path, cache: Path, receiver: Receiver) -> None:
    burst = photos / "import"
    burst.mkdir()
    for n in range(8):
        shutil.copy(photos / "chelsea.png", burst / f"IMG_{n:04d}.png")
    program, runs = hook_script(tmp_path)
    config = write_config(tmp_path, {"apprise": {"urls": [receiver.url()]},
                                     "exec": {"command": [*program, "{event}", "{count}", "{path}"]}})
    assert run("scan", photos, "--config", config, "--cache", cache).code == ExitCode.OK
    [alert] = receiver.bodies
    assert alert["title"] == "8 duplicate photos"
    assert "dupwatch notices --since" in alert["message"]
    [hook] = hook_runs(runs)
    assert hook["argv"][:2] == ["summary", "8"]
    assert len(log_path(tmp_path, cache).read_text().splitlines()) == 8  # the log keeps each one


def notice(n: int) -> Notice:
    return Notice(n, 1_700_000_000.0 + n, Match(f"/p/{n}.jpg", "/p/0.jpg", "exact", "sha256", 1.0, 0))


def test_burst_rule() -> None:
    rule = BurstConfig()
    burst = Burst(rule.count, rule.seconds, rule.quiet_seconds)
    burst.add([notice(1), notice(2), notice(3)], now=0.0)
    assert burst.due(1.9) == []  # still arriving, perhaps
    assert burst.due(2.0) == [notice(1), notice(2), notice(3)]  # quiet: three alerts
    burst.add([notice(4), notice(5)], now=3.0)
    assert burst.due(5.0) == [notice(4), notice(5)]  # five within 30 s: still one each
    burst.add([notice(6)], now=6.0)
    assert burst.due(8.0) == [Summary(1, notice(6), notice(6))]  # the sixth within 30 s
    burst.add([notice(n) for n in range(7, 107)], now=40.0)
    assert burst.due(42.0) == [Summary(100, notice(7), notice(106))]
    sent = []
    for t in range(100):  # a steady stream, never quiet: one summary per 30 s
        burst.add([notice(200 + t)], now=50.0 + t)
        sent += burst.due(50.0 + t)
    assert sent == [Summary(31, notice(200), notice(230)), Summary(31, notice(231), notice(261)),
                    Summary(31, notice(262), notice(292))]
    assert burst.due(200.0) == [Summary(7, notice(293), notice(299))]
    burst.add([notice(999)], now=500.0)
    assert burst.due(500.0, final=True) == [notice(999)]  # a stop sends what is held


def test_a_target_that_is_down_gets_its_alerts_later(tmp_path: Path, photos: Path, cache: Path) -> None:
    down = Receiver(fail=1_000)
    try:
        config = write_config(tmp_path, {"apprise": {"urls": [down.url()]}})
        shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
        result = run("scan", photos, "--config", config, "--cache", cache)
        assert result.code == ExitCode.OK  # a failed alert is no failed scan
        assert down.failed >= 1 and down.bodies == []
        assert "notices.apprise.urls[0] (json): not delivered" in result.err
        assert "go at the next start" in result.err
        assert len(log_path(tmp_path, cache).read_text().splitlines()) == 1  # the log is its own sink
        port = down.port
    finally:
        down.stop()
    up = Receiver(port=port)
    try:
        assert run("scan", photos, "--config", config, "--cache", cache).code == ExitCode.OK
        [alert] = up.bodies  # late, not lost, and sent once
        assert alert["title"] == "Duplicate photo: zz coffee copy.png"
    finally:
        up.stop()


def test_a_pair_marked_not_a_duplicate_before_its_alert_went_out_is_not_alerted(
    tmp_path: Path, photos: Path, cache: Path
) -> None:
    down = Receiver(fail=1_000)
    try:
        config = write_config(tmp_path, {"apprise": {"urls": [down.url()]}})
        shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
        assert run("scan", photos, "--config", config, "--cache", cache).code == ExitCode.OK
        assert down.failed >= 1 and down.bodies == []  # the alert is pending
        port = down.port
    finally:
        down.stop()
    ignored = run("ignore", photos / "coffee.png", photos / "zz coffee copy.png", "--cache", cache)
    assert ignored.code == ExitCode.OK, ignored.err
    shutil.copy(photos / "chelsea.png", photos / "zz chelsea copy.png")  # a new pair, still told
    up = Receiver(port=port)
    try:
        assert run("scan", photos, "--config", config, "--cache", cache).code == ExitCode.OK
        assert [alert["title"] for alert in up.bodies] == ["Duplicate photo: zz chelsea copy.png"]
    finally:
        up.stop()
    logged = [json.loads(line)["path"] for line in log_path(tmp_path, cache).read_text().splitlines()]
    assert sorted(Path(p).name for p in logged) == ["zz chelsea copy.png", "zz coffee copy.png"]


def test_failed_deliveries_are_retried_with_backoff(tmp_path: Path, photos: Path, cache: Path) -> None:
    shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
    assert run("scan", photos, "--cache", cache).code == ExitCode.OK  # a notice waits in the outbox
    flaky = Receiver(fail=2)
    sink = AppriseTarget(flaky.url(), "notices.apprise.urls[0]")
    outbox = Outbox([sink], lambda: SqliteStore(cache), BurstConfig(quiet_seconds=0), True)
    try:
        with sqlite3.connect(cache) as db:  # the sink is new: make it start before notice 1
            db.execute("INSERT INTO sink_positions VALUES (?, 0)", (sink.key,))
        outbox.start()
        [alert] = flaky.wait(1)  # after two failures, 1 s and 2 s apart, in the background
        assert flaky.failed == 2 and alert["title"] == "Duplicate photo: zz coffee copy.png"
    finally:
        outbox.close(1.0)
        flaky.stop()
    with sqlite3.connect(cache) as db:
        saved = db.execute("SELECT delivered FROM sink_positions WHERE sink = ?", (sink.key,)).fetchone()
    assert saved == (1,)


def test_a_bad_apprise_url_is_a_config_error_naming_the_key(tmp_path: Path, photos: Path) -> None:
    config = write_config(tmp_path, {"apprise": {"urls": ["ntfy://mytopic", "tgrm://123456:SECRETTOKEN"]}})
    with pytest.raises(ConfigError) as info:
        configuration.load_file(config)
    assert info.value.key == "notices.apprise.urls[1]"
    result = run("scan", photos, "--config", config)
    assert result.code == ExitCode.USAGE
    [line] = result.err.strip().splitlines()
    assert "notices.apprise.urls[1]: not a URL Apprise can send to (scheme 'tgrm'" in line
    assert "SECRETTOKEN" not in line  # errors reach logs: a URL's token is never repeated


@pytest.mark.parametrize(("command", "problem"), [
    ("notify-send {path}", "must be a list"),
    (["/bin/echo", "{file}"], "unknown field {file}"),
    (["/bin/echo", "{path"], "literal braces"),
])
def test_a_bad_exec_command_names_the_key(tmp_path: Path, command: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        configuration.load_file(write_config(tmp_path, {"exec": {"command": command}}))
    assert info.value.key.startswith("notices.exec.command") and problem in info.value.problem


def test_the_log_rotates_and_notices_reads_every_file(tmp_path: Path) -> None:
    path = tmp_path / "log" / "notices.jsonl"
    sink = NoticeLog(path, max_bytes=10_000, backups=3)
    for n in range(1, 301):
        sink.send(notice(n))
    sink.send(notice(300))  # delivered twice (a kill before its position was saved): listed once
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "notices.jsonl", "notices.jsonl.1", "notices.jsonl.2", "notices.jsonl.3"]
    assert all(p.stat().st_size <= 10_000 for p in path.parent.iterdir())
    ids = [n.id for n in notice_log.read(path)]
    assert ids == list(range(ids[0], 301)) and ids[0] > 1  # the oldest rotated out; order kept
    assert [n.id for n in notice_log.read(path, since=notice(298).found_at)] == [298, 299, 300]

    config = write_config(tmp_path, {"log": {"path": str(path)}})
    listed = run("notices", "--config", config, "--since", notice(250).found_at_text())
    assert listed.code == ExitCode.OK
    assert listed.out.count("duplicates /p/0.jpg") == 51 and "/p/250.jpg" in listed.out
    assert run("notices", "--config", config, "--since", "1h").out.startswith("no duplicates found since 1h")
    bad = run("notices", "--config", config, "--since", "yesterday-ish")
    assert bad.code == ExitCode.USAGE and "--since: not a date" in bad.err


def test_pairs_from_before_notices_are_not_told_again(photos: Path, cache: Path, tmp_path: Path) -> None:
    shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
    SqliteStore(cache).close()
    with sqlite3.connect(cache) as db:  # a cache made by the release before notices
        db.executescript(BEFORE_SCHEMA_6 + "; DROP TABLE troubles; DROP TABLE notices;"
                         " DROP TABLE sink_positions; DROP TABLE not_duplicates;"
                          " ALTER TABLE files DROP COLUMN turned;"
                          " PRAGMA user_version = 1;")
        db.execute("DELETE FROM sqlite_sequence")
    store = SqliteStore(cache)
    assert store.notices(0, 10) == [] and store.position("log") == 0
    store.close()
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_the_outbox_is_delivered_by_one_process_at_a_time(tmp_path: Path, photos: Path, cache: Path) -> None:
    lock = cache.with_name(cache.name + ".notices.lock")
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT)\n"
                               "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, b'4242\\n')\n"
                               "print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
        result = run("scan", photos, "--cache", cache)
        assert "notices: dupwatch process 4242 delivers them" in result.err
        assert not log_path(tmp_path, cache).exists()  # left in the outbox for the process that holds it
    finally:
        holder.kill()
        holder.wait()
    run("scan", photos, "--cache", cache)  # the lock is free: this run delivers what waited
    [line] = log_path(tmp_path, cache).read_text().splitlines()
    assert json.loads(line)["path"] == str(photos / "zz coffee copy.png")


def test_closing_waits_for_no_thread_left_behind(tmp_path: Path, photos: Path, cache: Path) -> None:
    before = set(threading.enumerate())
    run("scan", photos, "--cache", cache)
    assert set(threading.enumerate()) <= before
    assert os.path.exists(log_path(tmp_path, cache).parent) is False  # no duplicate, no log file


def test_every_sink_is_documented() -> None:
    from dupwatch.sinks.registry import SINKS

    root = Path(__file__).parent.parent
    readme, example = (root / "README.md").read_text(), (root / "config.example.yaml").read_text()
    for name in SINKS:
        assert f"| `{name}` |" in readme
        assert f"\n  {name}:\n" in example


def test_a_copy_turned_on_a_canvas_says_so_in_the_alert_and_the_hook(
        tmp_path: Path, photos: Path, cache: Path, receiver: Receiver) -> None:
    from PIL import Image

    turned = photos / "zz coffee turned.jpg"
    Image.open(photos / "coffee.png").convert("RGB").rotate(25, expand=True).save(turned, quality=90)
    program, runs = hook_script(tmp_path)
    config = write_config(tmp_path, {"apprise": {"urls": [receiver.url("phone")]},
                                     "exec": {"command": [*program, "{path}", "{turned}", "{transform}"]}})
    assert run("scan", photos, "--config", config, "--cache", cache).code == ExitCode.OK
    [body] = receiver.bodies
    assert "turned 25° counter-clockwise on a canvas" in body["message"]
    [hook] = hook_runs(runs)
    assert hook["argv"][0] == str(turned) and abs(float(hook["argv"][1]) - 25) < 0.3
    assert hook["argv"][2] == ""  # no dihedral turn: an empty argument, not "None"


def test_each_cache_lists_its_own_notices(tmp_path: Path, photos: Path) -> None:
    # Issue 17: two caches, the default log path. Both caches number their notices from 1, so a
    # shared log let the first cache's notice 1 hide the second's from `dupwatch notices`.
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, name in ((first, "coffee.png"), (second, "rocket.jpg")):
        folder.mkdir()
        shutil.copy(photos / name, folder / name)
        shutil.copy(photos / name, folder / f"zz {name}")
    env = {"HOME": str(tmp_path / "home")}
    for folder, cache in ((first, tmp_path / "A.db"), (second, tmp_path / "B.db")):
        scanned = run_process("scan", folder, "--cache", cache, env=env)
        assert scanned.code == ExitCode.OK, scanned.err
    listed = {}
    for name in ("A.db", "B.db"):
        result = run_process("notices", "--cache", tmp_path / name, "--json", env=env)
        assert result.code == ExitCode.OK, result.err
        listed[name] = [(r["path"], r["match"]) for r in result.json()]
    assert listed["A.db"] == [(str(first / "zz coffee.png"), str(first / "coffee.png"))]
    assert listed["B.db"] == [(str(second / "zz rocket.jpg"), str(second / "rocket.jpg"))]


def test_the_notice_log_is_the_caches_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "xdg-state" / "dupwatch" / "log"
    log = LogSinkConfig()
    # The default cache keeps the log existing installs have, also when named by its path.
    assert log.resolved(CacheConfig()) == folder / "notices.jsonl"
    assert log.resolved(CacheConfig(path=CacheConfig().resolved())) == folder / "notices.jsonl"
    # Any other cache: notices-<digest>.jsonl, one per cache, the same however the path is written.
    mine = log.resolved(CacheConfig(path=tmp_path / "a.db"))
    other = log.resolved(CacheConfig(path=tmp_path / "b.db"))
    assert mine.parent == folder and mine.name.startswith("notices-") and mine != other
    (tmp_path / "link").symlink_to(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert log.resolved(CacheConfig(path=Path("a.db"))) == mine
    assert log.resolved(CacheConfig(path=tmp_path / "link" / "a.db")) == mine
    # PostgreSQL: named by its URL, without the password (which may change, and is a secret).
    url = "postgresql://photos:s3cret@nas:5432/dupwatch"
    pg = log.resolved(CacheConfig(url=url))
    assert pg.parent == folder and pg.name.startswith("notices-") and "s3cret" not in pg.name
    assert log.resolved(CacheConfig(url="postgres://photos:other@nas:5432/dupwatch")) == pg
    assert log.resolved(CacheConfig(url="postgresql://photos@nas:5432/dupwatch?password=x")) == pg
    assert log.resolved(CacheConfig(url="postgresql://photos@nas:5432/elsewhere")) != pg
    # A path set in the config is used as given, whatever the cache.
    given = LogSinkConfig(path=tmp_path / "all.jsonl")
    assert given.resolved(CacheConfig(path=tmp_path / "a.db")) == tmp_path / "all.jsonl"


def test_a_log_shared_by_two_caches_lists_each_caches_own(tmp_path: Path) -> None:
    path = tmp_path / "notices.jsonl"
    # A line from before lines named their cache: whose it was is unknown, so every cache lists it.
    path.write_text(json.dumps(notice(1).to_json()) + "\n")
    first, second = NoticeLog(path, 10_000_000, 5, "aaaa"), NoticeLog(path, 10_000_000, 5, "bbbb")
    first.send(notice(1))  # the same id as the old line and as the other cache's first notice
    second.send(Notice(1, 1_700_000_009.0, Match("/q/1.jpg", "/q/0.jpg", "exact", "sha256", 1.0, 0)))
    first.send(notice(2))
    first.send(notice(2))  # delivered twice after a kill: listed once
    assert [(n.id, n.match.path) for n in notice_log.read(path, cache="aaaa")] == \
        [(1, "/p/1.jpg"), (1, "/p/1.jpg"), (2, "/p/2.jpg")]
    assert [(n.id, n.match.path) for n in notice_log.read(path, cache="bbbb")] == \
        [(1, "/p/1.jpg"), (1, "/q/1.jpg")]


def test_notices_show_each_group_and_its_keeper(photos: Path, cache: Path) -> None:
    from PIL import Image

    shutil.copy(photos / "rocket.jpg", photos / "zz rocket copy.jpg")
    coffee = Image.open(photos / "coffee.png").convert("RGB")
    coffee.resize((coffee.width // 2, coffee.height // 2)).save(photos / "coffee small.jpg", quality=85)
    assert run("scan", photos, "--cache", cache).code == ExitCode.OK
    listed = run("notices", "--cache", cache, "--json")
    assert listed.code == ExitCode.OK, listed.err
    records = {Path(r["path"]).name: r for r in listed.json()}
    assert set(records) == {"coffee.png", "zz rocket copy.jpg"}
    better, copy = records["coffee.png"], records["zz rocket copy.jpg"]
    assert better["keep"] == str(photos / "coffee.png") and copy["keep"] == str(photos / "rocket.jpg")
    assert better["group"] != copy["group"]

    text = run("notices", "--cache", cache).out
    # The copy: its group, and the keeper named (the text above it does not say which to keep).
    assert (f"{photos / 'zz rocket copy.jpg'}\n    duplicates {photos / 'rocket.jpg'}  (exact copy)\n"
            f"    group {copy['group']}, keep {photos / 'rocket.jpg'}\n") in text
    # A better version: "keep the new one" is said already; only the group is added.
    assert f"keep the new one\n    group {better['group']}\n" in text

    one = run("notices", "--cache", cache, "--group", str(copy["group"]), "--json")
    assert [r["path"] for r in one.json()] == [copy["path"]]
    none = run("notices", "--cache", cache, "--group", "999")
    assert none.code == ExitCode.OK and none.out.startswith("no duplicates found in group 999")
