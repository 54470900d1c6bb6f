"""When a written file has settled: injected time for the logic, one real writer in real time."""

from __future__ import annotations

import errno
import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest

from dupwatch.watch.settle import Settler


def write(path: Path, data: bytes = b"x" * 100) -> str:
    with path.open("ab") as f:
        f.write(data)
    return str(path)


def test_a_quiet_unchanged_file_is_due_after_the_delay(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    settler = Settler(delay=1.0)
    settler.touch(path, now=0.0)
    assert settler.due(0.0) == []  # the first look only records the stat
    assert settler.due(0.9) == []
    assert settler.due(1.0) == [path]
    assert settler.pending() == 0
    assert settler.due(5.0) == []  # returned once


def test_an_event_restarts_the_wait(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    settler = Settler(delay=1.0)
    settler.touch(path, now=0.0)
    assert settler.due(0.1) == []
    write(tmp_path / "a.jpg")
    settler.touch(path, now=0.8)
    assert settler.due(1.1) == []  # what was seen before the event no longer counts
    assert settler.due(2.0) == []
    assert settler.due(2.1) == [path]


def test_a_file_that_changed_without_an_event_is_looked_at_again(tmp_path: Path) -> None:
    # A polling watcher on a network mount may see one event for a copy that runs for seconds.
    path = write(tmp_path / "a.jpg")
    settler = Settler(delay=1.0)
    settler.touch(path, now=0.0)
    assert settler.due(0.0) == []
    write(tmp_path / "a.jpg")
    assert settler.due(1.0) == []  # the size changed: another delay
    assert settler.due(1.9) == []
    assert settler.due(2.0) == [path]


def test_an_mtime_change_alone_counts_as_a_change(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    settler = Settler(delay=1.0)
    settler.touch(path, now=0.0)
    assert settler.due(0.0) == []
    os.utime(path, ns=(1_000_000_000, 2_000_000_000))  # `cp -p` sets the times after the data
    assert settler.due(1.0) == []
    assert settler.due(2.0) == [path]


def test_a_close_after_write_is_due_at_the_next_poll(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    settler = Settler(delay=10.0)
    settler.touch(path, now=0.0)
    settler.touch(path, now=0.5, closed=True)
    assert settler.due(0.5) == [path]


def test_a_close_is_not_enough_if_the_file_changes_after_it(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    settler = Settler(delay=10.0)
    settler.touch(path, now=0.0, closed=True)
    write(tmp_path / "a.jpg")  # written again, and the event not seen (yet)
    assert settler.due(0.1) == []
    assert settler.due(10.0) == []
    assert settler.due(10.1) == [path]


def test_a_write_after_a_close_means_the_file_is_not_done(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    settler = Settler(delay=1.0)
    settler.touch(path, now=0.0, closed=True)
    write(tmp_path / "a.jpg")
    settler.touch(path, now=0.1)  # a second writer opened it
    assert settler.due(0.1) == []
    assert settler.due(1.0) == []
    assert settler.due(1.1) == [path]


def test_a_vanished_file_is_dropped_silently(tmp_path: Path) -> None:
    settler = Settler(delay=1.0)
    gone = write(tmp_path / "gone.jpg")
    settler.touch(gone, now=0.0)
    assert settler.due(0.0) == []
    os.unlink(gone)
    assert settler.due(1.0) == []
    assert settler.pending() == 0
    settler.touch(str(tmp_path / "never.jpg"), now=2.0, closed=True)
    assert settler.due(2.0) == []
    assert settler.pending() == 0
    settler.touch(str(tmp_path / "not-a-folder.jpg" / "x.jpg"), now=3.0)  # ENOTDIR
    assert settler.due(3.0) == []
    assert settler.pending() == 0


def test_forget(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    settler = Settler(delay=1.0)
    settler.touch(path, now=0.0)
    settler.forget(path)
    settler.forget(path)  # twice is fine
    assert settler.pending() == 0
    assert settler.due(5.0) == []


def test_due_paths_come_in_the_order_they_first_arrived(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"{name}.jpg") for name in ("c", "a", "b")]
    settler = Settler(delay=1.0)
    for path in paths:
        settler.touch(path, now=0.0)
    settler.touch(paths[0], now=0.1)  # touched again: keeps its place
    assert settler.due(0.1) == []
    assert settler.due(1.1) == paths


def test_a_path_that_cannot_be_stat_ed_is_handed_on(tmp_path: Path) -> None:
    # So that the pipeline tries it and says why it was skipped, instead of it waiting forever.
    def denied(path: str) -> os.stat_result:
        raise PermissionError(errno.EACCES, "Permission denied", path)

    settler = Settler(delay=1.0, stat=denied)
    settler.touch("/photos/locked/a.jpg", now=0.0)
    assert settler.due(0.0) == ["/photos/locked/a.jpg"]


def test_an_event_during_a_look_wins(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    settler: Settler

    def stat_then_event(p: str) -> os.stat_result:
        result = os.stat(p)
        settler.touch(p, now=1.0)  # the watcher thread, between due's stat and its verdict
        return result

    settler = Settler(delay=1.0, stat=stat_then_event)
    settler.touch(path, now=0.0, closed=True)
    assert settler.due(0.5) == []  # the stat would have matched, but an event came in between
    assert settler.pending() == 1


def test_a_path_recreated_during_a_look_is_not_lost(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg")
    settler: Settler

    def vanish_and_return(p: str) -> os.stat_result:
        os.unlink(p)
        try:
            return os.stat(p)  # ENOENT
        finally:
            settler.forget(p)  # the watcher: deleted, then created again
            write(Path(p))
            settler.touch(p, now=0.5)

    settler = Settler(delay=1.0, stat=vanish_and_return)
    settler.touch(path, now=0.0)
    assert settler.due(0.0) == []
    assert settler.pending() == 1  # the "vanished" belonged to the old file


def test_touch_and_due_from_two_threads(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"{i}.jpg", b"x") for i in range(200)]
    settler = Settler(delay=0.0)
    stop = threading.Event()
    errors: list[BaseException] = []

    def watcher() -> None:
        try:
            for _ in range(20):
                for path in paths:
                    settler.touch(path, time.monotonic())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=watcher)
    thread.start()
    settled: list[str] = []
    while not stop.is_set():
        settled += settler.due(time.monotonic())
    thread.join()
    for _ in range(3):
        settled += settler.due(time.monotonic())
    assert errors == []
    assert settler.pending() == 0
    assert set(settled) == set(paths)


@pytest.mark.parametrize("events", [True, False], ids=["with-events", "no-events"])
def test_a_file_being_appended_to_is_due_once_after_the_writer_stops(tmp_path: Path, events: bool) -> None:
    """Real time, a real writer: 1.5 s of appends every 30 ms, a 0.3 s delay, polls every 20 ms.

    With events, the writer touches after each append (as inotify's IN_MODIFY would); without,
    only once at the start (a polling watcher that saw the file appear), so the stat check alone
    must hold the file back.
    """
    path = tmp_path / "copying.jpg"
    path.write_bytes(b"")
    settler = Settler(delay=0.3)
    done = threading.Event()
    stopped_at: list[float] = []

    def writer() -> None:
        settler.touch(str(path), time.monotonic())
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            write(path, b"y" * 4096)
            if events:
                settler.touch(str(path), time.monotonic())
            time.sleep(0.03)
        stopped_at.append(time.monotonic())
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    due_at: list[float] = []
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        writer_done = done.is_set()
        now = time.monotonic()
        if settler.due(now):
            assert writer_done, "due while the writer was still appending"
            due_at.append(now)
        if due_at and now > due_at[0] + 0.7:  # two more delays without a second report
            break
        time.sleep(0.02)
    thread.join()
    assert len(due_at) == 1
    assert stopped_at[0] <= due_at[0] < stopped_at[0] + 2.0
    assert path.stat().st_size > 20 * 4096  # the writer really wrote all along


def test_a_burst_is_bounded_by_paths_not_events() -> None:
    settler = Settler(delay=1.0)
    paths = [f"/nowhere/burst/IMG_{i:05}.jpg" for i in range(5000)]
    tracemalloc.start()
    try:
        for path in paths:
            settler.touch(path, now=0.0)
        first = tracemalloc.get_traced_memory()[0]
        for round_ in range(1, 11):
            now = float(round_)  # one float per round, as the first round's 0.0 is one constant
            for path in paths:
                settler.touch(path, now)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert settler.pending() == 5000
    assert first < 5000 * 512, f"{first / 5000:.0f} bytes per pending path"
    assert after - first < 64 * 1024, f"50,000 more events grew memory by {after - first} bytes"
    for _ in range(10_000):
        settler.touch(paths[0], now=11.0)
    assert settler.pending() == 5000
    assert settler.due(12.0) == []  # none of them exists: all dropped
    assert settler.pending() == 0
