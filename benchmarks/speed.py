"""Scan throughput on 12-megapixel JPEGs, rescan speed, and the decode-only ceiling.

    python benchmarks/speed.py [--photos DIR] [--count 208] [--rescan-files 10000]

Each figure runs `dupwatch scan` as a user would (its own process, both cores) and reads its
peak memory from the kernel (the largest of the scan and its worker processes).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from benchmarks.common import TreePeak, adopt_orphans, arguments, children_cpu, reap_all, summary
from dupwatch.bench.variants import photo_paths, write_large_jpeg


def large_jpegs(originals: list[Path], folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(count):
        target = folder / f"IMG_{n:04d}.jpg"
        if not target.exists():
            write_large_jpeg(originals[n % len(originals)], target)
        out.append(target)
    return out


def draft_decode(path: Path) -> tuple[int, int]:
    with Image.open(io.BytesIO(path.read_bytes())) as im:
        im.draft("RGB", (64, 64))
        im.load()
        return im.size


class Run(NamedTuple):
    seconds: float  # wall clock
    peak: float  # MiB, the scan and its workers together
    cpu: float  # user + system seconds of the scan, its forkserver and its workers
    summary: str  # the scan's last line of output
    pss: float = 0.0  # MiB, the same peak with shared pages counted once (TreePeak.pss_mib)


def scan(folder: Path, cache: Path, *extra: str) -> Run:
    """One `dupwatch scan` run in its own process, as a user would run it."""
    adopt_orphans()
    cpu = children_cpu()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dupwatch", "scan", str(folder), "--json",
                             "--cache", str(cache), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    memory = TreePeak(proc.pid)
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    peak = memory.stop()
    reap_all()  # the forkserver and workers outlive the scan by a moment
    if proc.returncode not in (0, 3):
        raise SystemExit(f"scan failed: {err}")
    return Run(seconds, peak, children_cpu() - cpu, out.strip().splitlines()[-1], memory.pss_mib)


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=208, help="12-megapixel JPEGs to scan")
    parser.add_argument("--rescan-files", type=int, default=10_000)
    args = parser.parse_args()
    originals = photo_paths(args.photos)
    # A folder per count: the scan reads the whole folder, which must hold exactly these files.
    big = large_jpegs(originals, args.work / f"12mp-{args.count}", args.count)
    mb = sum(p.stat().st_size for p in big) / len(big) / 1e6
    print(f"{len(big)} JPEGs of 4000×3000, {mb:.1f} MB each on average, {os.cpu_count()} cores")

    for p in big:  # warm the page cache: measure decoding, not the disk
        p.read_bytes()
    started = time.perf_counter()
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(draft_decode, big, chunksize=4))
    ceiling = len(big) / (time.perf_counter() - started)
    print(f"draft decode alone, all cores:     {ceiling:7.1f} images/s (the ceiling)")
    summary(f"draft decode alone of {len(big)} 12 MP JPEGs, all cores: the ceiling",
            f"{ceiling:.1f} images/s")

    empty = args.work / "empty"
    empty.mkdir(exist_ok=True)
    startup = scan(empty, args.work / "empty.db").seconds
    print(f"process start, empty scan:         {startup:7.2f} s")

    cache = args.work / "speed.db"
    cache.unlink(missing_ok=True)
    run = scan(big[0].parent, cache)
    rate, steady = len(big) / run.seconds, len(big) / (run.seconds - startup)
    print(f"scan, default mode, cold cache:    {rate:7.1f} images/s; {steady:.1f} without the start"
          f" ({100 * steady / ceiling:.0f} % of the ceiling); {1000 * run.cpu / len(big):.1f} ms CPU"
          f" an image; peak {run.peak:.0f} MiB")
    summary(f"`dupwatch scan`, default mode, {len(big)} 12 MP JPEGs, cold cache",
            f"{rate:.1f} images/s ({steady:.1f} without the start); {1000 * run.cpu / len(big):.1f} ms CPU"
            " an image", f"{run.peak:.0f} MiB with its workers")

    many = args.work / "many"
    if not many.exists() or len(list(many.iterdir())) != args.rescan_files:
        shutil.rmtree(many, ignore_errors=True)
        many.mkdir(parents=True)
        small = args.work / "small.jpg"
        Image.open(originals[0]).convert("RGB").resize((64, 48)).save(small)
        for n in range(args.rescan_files):
            os.link(small, many / f"{n:06d}.jpg")  # hard links: many files, little disk
    cache = args.work / "rescan.db"
    cache.unlink(missing_ok=True)
    n = args.rescan_files
    print(f"first scan of {n} small copies:   {n / scan(many, cache).seconds:7.1f} files/s")
    run = scan(many, cache)
    print(f"rescan of them, unchanged:         {n / run.seconds:7.1f} files/s; peak {run.peak:.0f} MiB")
    summary(f"rescan of {n:,} unchanged files", f"{n / run.seconds:,.0f} files/s; {run.cpu:.2f} CPU s in all",
            f"{run.peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
