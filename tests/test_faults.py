"""Faults in the config and the cache: one short line and an exit code, never a traceback.

Every case is a real `python -m dupwatch` process on real files: configs that are not UTF-8, too
large, alias bombs or hold huge values; caches that are read-only, damaged on one page, not a
database at all, or on a full disk; and a running `dupwatch watch` sent SIGHUP with a broken
config, which keeps its old config and goes on reporting.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dupwatch.errors import ExitCode
from dupwatch.store.migrations import MIGRATIONS
from tests.conftest import Result, run, run_process
from tests.test_watch import CONFIG, Daemon, Start, start  # noqa: F401 (the fixture)

LONG = 1_000_000

# A "billion laughs": each line nine times the one before, 10^9 values from 342 bytes.
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))

BAD_CONFIGS: dict[str, tuple[bytes, str]] = {
    "not utf-8": (b"confirm:\n  method: caf\xe9\n", "not UTF-8 at byte 22"),
    "alias bomb": (BOMB.encode(), "too many aliases"),
    "a 1 MB value": (b'confirm:\n  method: "' + b"x" * LONG + b'"\n', "confirm.method: unknown method"),
    "a 1 MB number": (b'confirm:\n  threshold: "' + b"7" * LONG + b'x"\n', "confirm.threshold:"),
    "too large": (b"#" * (2 * LONG), "too large"),
    "nested 500,000 deep": (b"[" * 500_000, "nested more than"),
    "a NUL byte": (b"confirm:\x00\n", "not valid YAML: character #x0000"),
}


def one_short_line(result: Result, exit_code: int, path: Path) -> str:
    assert result.code == exit_code, result.err
    assert "Traceback" not in result.err
    [line] = result.err.splitlines()
    assert line.startswith("dupwatch: ") and short(line, path), line[:1000]
    return line


def short(line: str, path: Path) -> bool:
    """Under 300 bytes, the file's name (which the test picked) aside."""
    return len(line.replace(str(path), "PATH").encode()) < 300


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_config_is_one_short_line_and_exit_2(tmp_path: Path, photos: Path, case: str) -> None:
    content, expected = BAD_CONFIGS[case]
    config = tmp_path / "config.yaml"
    config.write_bytes(content)
    result = run_process("scan", "--config", config, photos, "--cache", tmp_path / "c.db")
    line = one_short_line(result, ExitCode.USAGE, config)
    assert f"dupwatch: {config}: " in line and expected in line


def test_sighup_with_a_broken_config_keeps_the_old_one(start: Start, tmp_path: Path,  # noqa: F811
                                                       photos: Path, cache: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    daemon = start("--config", config, "--cache", cache, photos)
    daemon.wait_log("caught up: 8 files")
    broken = [BAD_CONFIGS["not utf-8"][0], BOMB.encode(), b"confirm:\n  threshold: high\n", None]
    for n, content in enumerate(broken, start=1):
        if content is None:
            config.unlink()
        else:
            config.write_bytes(content)
        daemon.proc.send_signal(signal.SIGHUP)
        _wait_count(daemon, "reload failed", n)
    failures = [line for line in daemon.log().splitlines() if "reload failed" in line]
    assert len(failures) == 4 and all(short(line, config) for line in failures), failures
    assert "not UTF-8 at byte 22" in failures[0] and "too many aliases" in failures[1]
    assert "confirm.threshold" in failures[2] and "cannot read" in failures[3]
    assert "Traceback" not in daemon.log() and daemon.proc.poll() is None
    # Still watching, with the old config: a copy of a photo is reported.
    shutil.copy(photos / "chelsea.png", photos / "chelsea copy.png")
    daemon.wait_duplicate(photos / "chelsea copy.png", photos / "chelsea.png")
    assert daemon.stop() == ExitCode.OK


def _wait_count(daemon: Daemon, text: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while sum(text in line for line in daemon.log().splitlines()) < count:
        assert time.monotonic() < deadline and daemon.proc.poll() is None, daemon.log()
        time.sleep(0.05)


# -- the cache ---------------------------------------------------------------------------------

def damage(cache: Path, table: str) -> int:
    """Garbage over one page of `table` (the middle one of its leaves): the page number."""
    with contextlib.closing(sqlite3.connect(cache)) as db:
        pages = sorted(p for (p,) in db.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf'", (table,)))
        size = int(db.execute("PRAGMA page_size").fetchone()[0])
    page = int(pages[len(pages) // 2])
    with cache.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xde\xad" * (size // 2))
    return page


def built(photos: Path, cache: Path) -> Path:
    shutil.copy(photos / "coffee.png", photos / "coffee copy.png")  # a notice in the cache too
    assert run("scan", photos, "--cache", cache).code == ExitCode.OK
    assert not cache.with_name(cache.name + "-wal").exists()  # all in the file itself
    return cache


def in_use(command: str, photos: Path, cache: Path, start: Start, prefix: tuple[str, ...] = ()) -> str:  # noqa: F811
    """The one line `command` ends with, on this cache; exit code 1."""
    if command == "watch":
        daemon = start("--config", _config(photos), "--cache", cache, photos, prefix=prefix)
        code = daemon.proc.wait(60)
        log = daemon.log()
        assert code == ExitCode.ERROR and "Traceback" not in log, log
        [line] = [ln for ln in log.splitlines() if str(cache) in ln]
        assert short(line, cache), line
        return line
    args = ["scan", photos] if command == "scan" else ["notices", "--unreviewed"]
    proc = subprocess.run([*prefix, sys.executable, "-m", "dupwatch", *map(str, args), "--cache", str(cache)],
                          capture_output=True, text=True, timeout=120, check=False)
    return one_short_line(Result(proc.returncode, proc.stdout, proc.stderr), ExitCode.ERROR, cache)


def _config(photos: Path) -> Path:
    path = photos.parent / "watch.yaml"
    path.write_text(CONFIG)
    return path


DAMAGED = "move it aside (or delete it) and scan again: a rescan rebuilds it"


@pytest.mark.parametrize(("command", "table"), [("scan", "hashes"), ("watch", "hashes"),
                                                ("notices", "notices")])
def test_a_damaged_page_found_in_use_is_one_line(start: Start, photos: Path, cache: Path,  # noqa: F811
                                                 command: str, table: str) -> None:
    damage(built(photos, cache), table)
    line = in_use(command, photos, cache, start)
    assert f"cache {cache}: database disk image is malformed" in line
    assert f"run `dupwatch check --cache {cache}`" in line and DAMAGED in line


@pytest.mark.parametrize("command", ["scan", "watch", "notices"])
def test_a_file_that_is_not_a_database_is_one_line(start: Start, photos: Path, cache: Path,  # noqa: F811
                                                   command: str) -> None:
    cache.parent.mkdir(parents=True)
    cache.write_bytes(os.urandom(100_000))
    line = in_use(command, photos, cache, start)
    assert f"cannot open cache {cache}: file is not a database" in line and DAMAGED in line


@pytest.mark.parametrize("command", ["scan", "watch", "notices"])
def test_a_cache_under_a_file_is_one_line(start: Start, photos: Path, tmp_path: Path,  # noqa: F811
                                          command: str) -> None:
    (tmp_path / "a file").write_text("not a folder")
    cache = tmp_path / "a file" / "index.sqlite3"
    line = in_use(command, photos, cache, start)
    assert f"cannot open cache {cache}: cannot make its folder" in line and "another --cache" in line


# Root writes any file; drop the capabilities that let it, as a service user lacks them.
AS_USER = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search") if os.geteuid() == 0 else ()


@pytest.mark.parametrize("command", ["scan", "watch"])
def test_a_read_only_cache_is_one_line(start: Start, photos: Path, cache: Path,  # noqa: F811
                                       command: str) -> None:
    built(photos, cache).chmod(0o444)
    (photos / "coffee copy.png").unlink()  # a change to write
    line = in_use(command, photos, cache, start, prefix=AS_USER)
    assert f"cache {cache}: attempt to write a readonly database" in line
    assert "give this user write access to it and to its folder" in line


def _small_disk(folder: Path, kib: int) -> tuple[str, ...]:
    """A prefix that runs a command with a `kib` KiB tmpfs on `folder`, in its own mount namespace."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f'mount -t tmpfs -o size={kib}k tmpfs "{folder}"'],
                           capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {probe.stderr.decode(errors='replace').strip()}")
    return ("unshare", "-m", "sh", "-c", f'mount -t tmpfs -o size={kib}k tmpfs "{folder}" && exec "$@"', "sh")


@pytest.mark.parametrize("command", ["scan", "watch"])
def test_a_cache_on_a_full_disk_is_one_line(start: Start, photos: Path, tmp_path: Path,  # noqa: F811
                                            command: str) -> None:
    cache = tmp_path / "small" / "index.sqlite3"
    # Room for a new cache's schema (16 KB pages, and its WAL), not for its first fingerprints.
    line = in_use(command, photos, cache, start, prefix=_small_disk(cache.parent, 704))
    # Found in use, past the open: the disk fills up as fingerprints are written.
    assert f"dupwatch: cache {cache}: database or disk is full" in line and "the disk is full" in line


def test_check_a_good_and_a_damaged_cache(photos: Path, cache: Path) -> None:
    built(photos, cache)
    good = run_process("check", "--cache", cache)
    assert good.code == ExitCode.OK, good.err
    assert good.out.splitlines() == [f"{cache}: schema {len(MIGRATIONS)}, 9 files, 1 notice", "ok"]
    damage(cache, "files")
    before = cache.read_bytes()
    bad = run_process("check", "--cache", cache)
    assert bad.code == ExitCode.ERROR and "Traceback" not in bad.err, bad.err
    lines = bad.out.splitlines()
    assert lines[1] == "damaged:" and "  table files: database disk image is malformed" in lines, bad.out
    assert f"move the cache aside (mv {cache} {cache}.damaged) and scan your folders again" in lines[-1]
    assert cache.read_bytes() == before  # checking changes nothing
    nowhere = cache.with_name("nope.sqlite3")
    missing = run_process("check", "--cache", nowhere)
    assert "no cache at" in one_short_line(missing, ExitCode.ERROR, nowhere)


def test_a_fifo_given_as_the_config_is_refused_without_blocking(tmp_path: Path, photos: Path) -> None:
    fifo = tmp_path / "config.yaml"
    os.mkfifo(fifo)
    result = run_process("scan", "--config", fifo, photos)
    assert result.code == ExitCode.USAGE, result.err
    assert result.err.strip() == f"dupwatch: {fifo}: (file): not a regular file"


def test_decoding_processes_that_cannot_start_are_one_line(photos: Path, cache: Path, tmp_path: Path) -> None:
    """A worker's interpreter that dies at once (here a sitecustomize that exits in every
    `python -c` child, as the forkserver is): the scan stops with one line, not a traceback."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text('import os, sys\nif sys.argv[:1] == ["-c"]:\n    os._exit(1)\n')
    env = {"PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = run_process("scan", photos, "--cache", cache, "--workers", "2", env=env)
    assert result.code == ExitCode.ERROR, result.err
    assert "Traceback" not in result.err
    assert "dupwatch: the decoding processes could not start" in result.err
    assert "--workers 1" in result.err


def test_stdout_closed_early_is_not_an_error(  # while a pipe of its own breaking is (above)
        photos: Path, cache: Path) -> None:
    head = subprocess.Popen([sys.executable, "-m", "dupwatch", "scan", str(photos), "--cache", str(cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert head.stdout is not None and head.stderr is not None
    head.stdout.close()  # `| true`: every line it prints meets a pipe with no reader
    err = head.stderr.read().decode()
    assert head.wait(120) == ExitCode.OK, err
    assert "Traceback" not in err and "pipe" not in err
