"""What every benchmark shares: where the photos are, a work folder, peak memory and CPU time."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

SHARED_PHOTOS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "photos"
# `benchmarks/run.py` names a file here; each script adds its headline figures to it.
SUMMARY = "DUPWATCH_BENCH_SUMMARY"


def summary(what: str, figure: str, memory: str = "") -> None:
    """One row of the table `benchmarks/run.py` prints at the end (nothing when run alone)."""
    path = os.environ.get(SUMMARY)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"what": what, "figure": figure, "memory": memory}) + "\n")


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--photos", type=Path, default=SHARED_PHOTOS,
                        help="a folder of distinct photos (default: ../shared/data/photos)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dupwatch-bench"),
                        help="where generated files go (kept between runs)")
    return parser


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # gone meanwhile
    return out


def _rss_kib(pid: int) -> int:
    return status_kib(pid, "VmRSS")


def status_kib(pid: int | str, field: str) -> int:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM, …) in KiB; 0 for a process gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system time of one process so far, all its threads (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pss_kib(pid: int) -> int:
    """Proportional set size: each page shared by n processes counts 1/n in each."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreePeak:
    """Peak of the summed resident memory of a process and all its descendants (workers too),
    sampled every 50 ms: the kernel's own peak counts one process at a time. Resident memory
    counts a page shared by the workers (torch imported by their forkserver) in each of them; the
    peak of the summed proportional sizes (`pss_mib`, sampled every 0.5 s) counts it once, as the
    machine pays it."""

    def __init__(self, pid: int) -> None:
        self.peak_kib = 0
        self.pss_peak_kib = 0
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # The proportional sizes every tenth sample only: the kernel walks each process's page
        # tables to give them, CPU taken from the run measured (a scan in this very process).
        tick = 0
        while not self._stop.wait(0.05):
            tree = _descendants(self._pid)
            self.peak_kib = max(self.peak_kib, sum(_rss_kib(p) for p in tree))
            if tick % 10 == 0:
                self.pss_peak_kib = max(self.pss_peak_kib, sum(_pss_kib(p) for p in tree))
            tick += 1

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024

    @property
    def pss_mib(self) -> float:
        return self.pss_peak_kib / 1024


def peak_mib() -> float:
    """This process's own peak resident memory."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def adopt_orphans() -> None:
    """Make this process the reaper of its descendants' orphans (Linux `PR_SET_CHILD_SUBREAPER`).

    A scan's worker processes are children of its forkserver, which nobody waits for when the
    scan exits; adopted, they are reaped here and their CPU time counts in `children_cpu`.
    """
    pr_set_child_subreaper = 36
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def reap_all() -> None:
    """Wait for every child and adopted orphan to exit."""
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def children_cpu() -> float:
    """User + system seconds of every reaped descendant so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def watch_start(args: list[str], then: Callable[[Iterator[str]], None] = lambda lines: None,
                env: dict[str, str] | None = None) -> tuple[float, float]:
    """`dupwatch watch ARGS`: seconds from its start to its "caught up" (READY=1), and the peak
    memory (MiB) of its whole tree until `then`, given the log lines after that one, returns."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dupwatch", "watch", *args], stderr=subprocess.PIPE,
                            text=True, env=env)
    memory = TreePeak(proc.pid)
    assert proc.stderr is not None
    ready = None
    for line in proc.stderr:
        if "caught up" in line:
            ready = time.perf_counter() - started
            then(iter(proc.stderr))
            break
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    peak = memory.stop()
    if ready is None:
        raise SystemExit(f"dupwatch watch ended without catching up (exit {proc.returncode})")
    return ready, peak
