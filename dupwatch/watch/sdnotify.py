"""The systemd notify protocol (sd_notify(3)), in the standard library and nothing else.

systemd passes the service an AF_UNIX datagram socket in `$NOTIFY_SOCKET`; each message is one
datagram of newline-separated `KEY=value` lines. Outside systemd (a terminal, the tests, a
container) the variable is unset and every call here does nothing, so callers never check.
A notify failure must never stop the watcher: it is logged once and otherwise ignored.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger("dupwatch")

# Only a bare newline ends a line in the protocol, but CR and NUL are replaced too: systemd
# reads the datagram as a C string, so a NUL would silently cut the message short.
_BREAKS = re.compile(r"[\r\n\x00]+")

# A stalled manager must not freeze the main loop (and, with it, the watchdog pings) forever.
_SEND_TIMEOUT = 1.0


class Notifier:
    """One service's line to systemd: READY, STATUS, WATCHDOG, STOPPING and RELOADING.

    The environment is read once, at construction; the socket is opened at the first message
    and kept. Safe to call from any thread (one datagram per call, sent whole by the kernel).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        self._where = raw
        self._address: str | None = None  # None with NOTIFY_SOCKET set: unusable, warn once
        if raw.startswith("/"):
            self._address = raw
        elif raw.startswith("@") and len(raw) > 1:
            self._address = "\0" + raw[1:]  # Linux abstract namespace: a leading NUL byte
        # Anything else (systemd ≥ 254 passes vsock: addresses to VMs) cannot be sent to here.
        self._watchdog_usec = env.get("WATCHDOG_USEC", "")
        self._watchdog_pid = env.get("WATCHDOG_PID", "")
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when systemd asked for notifications (NOTIFY_SOCKET was set)."""
        return bool(self._where)

    def ready(self) -> bool:
        return self._send("READY=1")

    def status(self, text: str) -> bool:
        return self._send("STATUS=" + _BREAKS.sub(" ", text).strip())

    def watchdog(self) -> bool:
        return self._send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self._send("STOPPING=1")

    def reloading(self) -> bool:
        # systemd ≥ 253 (Type=notify-reload) wants the CLOCK_MONOTONIC time of the reload
        # request, to tell this reload from an older one; earlier versions ignore the line.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def watchdog_interval(self) -> float | None:
        """The watchdog timeout in seconds, or None when no watchdog is armed for this process.

        Ping (`watchdog()`) at least twice per interval, as sd_watchdog_enabled(3) advises.
        WATCHDOG_PID names the process the watchdog is meant for: a child that inherited the
        environment must not believe it is the one being watched.
        """
        if not self.enabled:
            return None  # nobody to ping
        try:
            usec = int(self._watchdog_usec)
        except ValueError:
            return None
        if usec <= 0:
            return None
        if self._watchdog_pid:
            try:
                pid = int(self._watchdog_pid)
            except ValueError:
                return None
            if pid != os.getpid():
                return None
        return usec / 1_000_000

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _send(self, message: str) -> bool:
        """Send one datagram; True if it went out. Never raises."""
        if not self._where:
            return False
        if self._address is None:
            self._warn_once(f"NOTIFY_SOCKET={self._where!r} is not a socket path dupwatch can use")
            return False
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.settimeout(_SEND_TIMEOUT)
                sock = self._sock
            sock.sendto(message.encode("utf-8", "replace"), self._address)
        except OSError as exc:
            self._warn_once(f"cannot notify systemd at {self._where}: {exc.strerror or exc}")
            return False
        return True

    def _warn_once(self, text: str) -> None:
        # Once: the main loop pings the watchdog every few seconds, and a broken socket stays
        # broken; one line in the journal says it all.
        with self._lock:
            if self._warned:
                return
            self._warned = True
        log.warning("%s", text)
