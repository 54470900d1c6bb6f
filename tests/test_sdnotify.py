"""The systemd notify protocol: real AF_UNIX datagram sockets, the exact bytes systemd would read."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dupwatch.watch.sdnotify import Notifier


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI runner may itself be a systemd service: start every test from a clean environment."""
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def listener(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """What systemd holds: a datagram socket bound to a path, named in NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    assert len(str(path)) < 100, "AF_UNIX paths are limited to 108 bytes"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_each_call_sends_one_datagram_with_the_exact_message(listener: socket.socket) -> None:
    notifier = Notifier()
    assert notifier.enabled
    assert notifier.ready()
    assert listener.recv(4096) == b"READY=1"
    assert notifier.status("watching 3 folders, 12034 photos")
    assert listener.recv(4096) == b"STATUS=watching 3 folders, 12034 photos"
    assert notifier.watchdog()
    assert listener.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping()
    assert listener.recv(4096) == b"STOPPING=1"
    notifier.close()


def test_reloading_carries_the_monotonic_time_of_the_request(listener: socket.socket) -> None:
    notifier = Notifier()
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    match = re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=(\d+)", listener.recv(4096))
    assert match is not None
    assert before <= int(match.group(1)) <= after
    notifier.close()


def test_newlines_in_a_status_cannot_inject_other_assignments(listener: socket.socket) -> None:
    # Unescaped, "x\nREADY=1" would tell systemd the service is up when it is not.
    notifier = Notifier()
    notifier.status("copying\nREADY=1\r\n\x00done\n")
    assert listener.recv(4096) == b"STATUS=copying READY=1 done"
    notifier.status("sub-folder é/ü 📷")
    assert listener.recv(4096) == "STATUS=sub-folder é/ü 📷".encode()
    notifier.close()


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"dupwatch-test-{os.getpid()}-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notifier = Notifier()
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
        notifier.close()


def test_environment_is_read_at_construction(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    notifier = Notifier()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notifier.ready()
    assert listener.recv(4096) == b"READY=1"
    assert not Notifier().ready()
    notifier.close()


def test_every_call_is_a_no_op_without_notify_socket(caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier()
    assert not notifier.enabled
    with caplog.at_level(logging.DEBUG, logger="dupwatch"):
        assert not notifier.ready()
        assert not notifier.status("x")
        assert not notifier.watchdog()
        assert not notifier.reloading()
        assert not notifier.stopping()
    assert notifier.watchdog_interval() is None
    assert notifier._sock is None  # no socket was even opened
    assert caplog.records == []
    notifier.close()


def test_a_send_error_is_logged_once_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    notifier = Notifier()
    with caplog.at_level(logging.WARNING, logger="dupwatch"):
        for _ in range(5):
            assert not notifier.watchdog()
        assert not notifier.ready()
    warnings = [r for r in caplog.records if r.name == "dupwatch"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert "nobody-listens" in warnings[0].getMessage()
    notifier.close()


def test_sending_resumes_when_the_socket_comes_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    notifier = Notifier()
    assert not notifier.ready()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2.0)
        assert notifier.ready()
        assert sock.recv(4096) == b"READY=1"
    notifier.close()


@pytest.mark.parametrize("value", ["relative/path", "vsock:2:1234", "@"])
def test_an_unusable_address_is_logged_once(
    value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    notifier = Notifier()
    with caplog.at_level(logging.WARNING, logger="dupwatch"):
        assert not notifier.ready()
        assert not notifier.watchdog()
    assert len([r for r in caplog.records if r.name == "dupwatch"]) == 1


def test_watchdog_interval_in_seconds(listener: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Notifier().watchdog_interval() is None  # no WATCHDOG_USEC: no watchdog
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert Notifier().watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_USEC", "1500")
    assert Notifier().watchdog_interval() == 0.0015


def test_watchdog_pid_must_be_this_process(listener: socket.socket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert Notifier().watchdog_interval() == 30.0
    # The parent's watchdog, inherited by a child: not ours to ping.
    monkeypatch.setenv("WATCHDOG_PID", str(os.getppid()))
    assert Notifier().watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", "not-a-pid")
    assert Notifier().watchdog_interval() is None


@pytest.mark.parametrize("value", ["", "0", "-5", "thirty", "3.5"])
def test_a_bad_watchdog_usec_means_no_watchdog(
    value: str, listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", value)
    assert Notifier().watchdog_interval() is None


def test_no_watchdog_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert Notifier().watchdog_interval() is None
