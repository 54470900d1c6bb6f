"""Notices at scale: 1,000 duplicates found in one scan, with every sink on, against sinks off.

    python benchmarks/notices.py [--photos DIR] [--copies 1000] [--runs 2]

The folder holds the distinct photos and 1,000 byte copies of them (hard links), so ingestion is
as cheap per file as it gets and any cost of the sinks shows. "On" is the notice log, the JSON
sidecar, the XMP tag, an Apprise json:// target (a receiver in this process) and an exec hook;
"off" disables the log, the only sink on by default. Each run is `dupwatch scan` in its own
process, cold cache; the runs alternate so that other load on the machine hits both alike.
CPU is user + system of the scan process itself, where the sinks run (its decoding workers, children
of the forkserver, are not counted).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml

from benchmarks.common import arguments
from dupwatch.bench.variants import photo_paths
from dupwatch.config import CacheConfig, LogSinkConfig


class Alerts(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        Alerts.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def folder_of_copies(originals: list[Path], folder: Path, copies: int) -> int:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for p in originals:
        os.link(p, folder / p.name)
    for n in range(copies):
        original = originals[n % len(originals)]
        os.link(original, folder / f"zz copy {n:04d} {original.name}")
    return len(originals) + copies


def scan(folder: Path, work: Path, config: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds, CPU seconds and the summary of one cold `dupwatch scan`."""
    for sidecar in folder.glob("*.xmp"):
        sidecar.unlink()
    shutil.rmtree(work / "state", ignore_errors=True)
    cache = work / "cache.sqlite3"
    for leftover in work.glob("cache.sqlite3*"):
        leftover.unlink()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "XDG_STATE_HOME": str(work / "state")}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dupwatch", "scan", str(folder), "--json", "--cache",
                           str(cache), "--config", str(work / "config.yaml")], capture_output=True,
                          text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 3):
        raise SystemExit(f"scan failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each, alternating")
    args = parser.parse_args()
    work = args.work / "notices"
    folder = work / "photos"
    files = folder_of_copies(photo_paths(args.photos), folder, args.copies)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Alerts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    off = {"notices": {"log": {"enabled": False}}}
    on = {"notices": {
        "sidecar": {"enabled": True}, "xmp": {"enabled": True},
        "apprise": {"urls": [f"json://127.0.0.1:{server.server_address[1]}/alerts"]},
        "exec": {"command": ["/bin/true", "{path}", "{match}"]},
    }}
    print(f"{files} files ({args.copies} byte copies), {os.cpu_count()} cores, {args.runs} runs each")
    results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(args.runs):
        for name, config in (("off", off), ("on", on)):
            Alerts.received.clear()
            seconds, cpu, summary = scan(folder, work, config)
            results[name].append((seconds, cpu))
            print(f"  sinks {name:3}: {seconds:6.2f} s, {files / seconds:6.1f} files/s, "
                  f"{1000 * cpu / files:5.2f} CPU-ms/file in the scan process,"
                  f" {summary['duplicates']} duplicates")
            if name == "on":
                cache = CacheConfig(path=work / "cache.sqlite3")
                log = work / "state/dupwatch/log" / f"notices-{LogSinkConfig.cache_identity(cache)}.jsonl"
                lines = len(log.read_text().splitlines())
                sidecars = len(list(folder.glob("*.xmp")))
                print(f"             {len(Alerts.received)} alert(s) received"
                      f" ({', '.join(a['title'] for a in Alerts.received)}); {lines} log lines;"
                      f" {sidecars} XMP sidecars")
    server.shutdown()
    wall = {k: statistics.median(s for s, _ in v) for k, v in results.items()}
    used = {k: statistics.median(c for _, c in v) for k, v in results.items()}
    print(f"median throughput, sinks on vs off: {files / wall['on']:.1f} vs {files / wall['off']:.1f} files/s"
          f" ({100 * (wall['on'] / wall['off'] - 1):+.1f} % time);"
          f" scan-process CPU {1000 * used['on'] / files:.2f} vs {1000 * used['off'] / files:.2f} ms/file")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
