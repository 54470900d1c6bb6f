"""The watcher as a user runs it: alert latency, a burst of 2,000 files, and idle CPU.

    python benchmarks/watch.py [--photos DIR] [--rounds 30] [--burst 2000]

`dupwatch watch` runs in its own process on a fresh folder and cache; each figure is read off
the lines it logs, timed against when this script closed the file it copied in.
"""

from __future__ import annotations

import io
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from benchmarks.common import TreePeak, arguments, cpu_seconds, summary
from benchmarks.speed import large_jpegs
from dupwatch.bench.variants import photo_paths


class Daemon:
    def __init__(self, folder: Path, cache: Path, config: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "dupwatch", "watch", str(folder), "--cache",
                                      str(cache), "--config", str(config)],
                                     stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.memory = TreePeak(self.proc.pid)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put((time.monotonic(), line))

    def wait_for(self, text: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while True:
            at, line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if text in line:
                return at

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


def _turned(source: Path) -> bytes:
    """The photo turned by 25° onto black corners, as a 12-megapixel JPEG."""
    with Image.open(source) as im:
        turned = im.convert("RGB").rotate(25, expand=True).resize(im.size)
    buf = io.BytesIO()
    turned.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=1.0)
    parser.add_argument("--robust", action="store_true",
                        help="robust mode, and each copy turned by 25° so that geometry confirms it")
    args = parser.parse_args()
    originals = photo_paths(args.photos)
    big = large_jpegs(originals, args.work / "12mp-watch", args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache, config = Path(tmp) / "photos", Path(tmp) / "cache.db", Path(tmp) / "config.yaml"
        folder.mkdir()
        config.write_text(f"watch:\n  settle_seconds: {args.settle}\n"
                          + ("robust:\n  enabled: true\n" if args.robust else ""))
        for source in big[:args.rounds]:
            shutil.copy(source, folder / source.name)
        for source in originals:  # so that every file of the burst is a copy of one known
            shutil.copy(source, folder / source.name)
        daemon = Daemon(folder, cache, config)
        daemon.wait_for("caught up")

        latencies = []
        for n, source in enumerate(big[:args.rounds]):
            target = folder / f"copy-{n:03d}.jpg"
            data = _turned(source) if args.robust else source.read_bytes()
            with open(target, "wb") as f:
                f.write(data)
            closed = time.monotonic()
            latencies.append(daemon.wait_for(f"copy-{n:03d}.jpg duplicates") - closed)
        ms = np.array(latencies) * 1000
        print(f"alert latency, {args.rounds} 12-megapixel JPEGs closed one at a time,"
              f" settle {args.settle:g} s:"
              f" p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms,"
              f" max {ms.max():.0f} ms")
        mode = ", robust mode, turned 25°" if args.robust else ""
        summary(f"`dupwatch watch` alert latency{mode}, {args.rounds} 12 MP JPEGs, settle {args.settle:g} s",
                f"p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms",
                f"{daemon.memory.peak_kib / 1024:.0f} MiB with its workers")

        burst = folder / "burst"
        burst.mkdir()
        started = time.monotonic()
        for n in range(args.burst):
            source = originals[n % len(originals)]
            shutil.copy(source, burst / f"{n:05d}{source.suffix}")
        copied = time.monotonic()
        for _ in range(args.burst):
            daemon.wait_for(" duplicates ", timeout=120)
        done = time.monotonic()
        print(f"burst of {args.burst} copies: copied in {copied - started:.1f} s, every one reported after"
              f" {done - started:.1f} s ({args.burst / (done - started):.0f} files/s);"
              f" peak {daemon.memory.peak_kib / 1024:.0f} MiB with its workers")
        summary(f"`dupwatch watch`, a burst of {args.burst:,} copies",
                f"{args.burst / (done - started):.0f} files/s",
                f"{daemon.memory.peak_kib / 1024:.0f} MiB with its workers")

        time.sleep(2)
        before = daemon.cpu_seconds()
        time.sleep(10)
        idle = (daemon.cpu_seconds() - before) / 10 * 100
        watched = sum(1 for _ in folder.rglob('*'))
        print(f"idle, watching {watched} files: {idle:.2f} % of one core")
        summary(f"`dupwatch watch` idle, {watched:,} files", f"{idle:.2f} % of one core")
        code = daemon.stop()
        print(f"SIGTERM: exit code {code}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
