"""`dupwatch groups` over a cache of 100,000 notices: how long listing every group takes.

    python benchmarks/groups.py [--notices 100000] [--work DIR]

The cache is written through the store as a scan writes it: each group is one photo's keeper
and its copies (two to six: a resized export, a re-saved JPEG, a phone's copy...), each copy a
told pair, so a group of n files holds n - 1 notices; the members' headers (format, metadata)
are recorded, as the scan that grouped them read them. Each figure is the whole command in its
own process (Python's start and the imports included), output to /dev/null, best of three.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import arguments, summary
from dupwatch.config import CacheConfig
from dupwatch.record import FileStat, Header, Match, Photo
from dupwatch.store import open_store

FORMATS = ("PNG", "JPEG", "JPEG", "WEBP", "HEIF")


def fill(cache: Path, notices: int, rng: np.random.Generator) -> tuple[int, int]:
    """Groups into a new cache until it holds `notices` notices; (groups, files) written."""
    store = open_store(CacheConfig(path=cache))
    told = groups = files = 0
    while told < notices:
        size = min(int(rng.integers(2, 7)), notices - told + 1)
        ids = []
        for n in range(size):
            scale = 1.0 if n == 0 else float(rng.uniform(0.3, 1.0))
            photo = Photo(path=f"/photos/{groups // 1000:04d}/IMG_{groups:07d}_{n}.jpg",
                          stat=FileStat(int(3_000_000 * scale), (groups * 10 + n) * 10**9, 1, files),
                          content_hash=rng.bytes(32), width=int(4000 * scale), height=int(3000 * scale))
            ids.append(store.put(photo, "chash/1"))
            store.put_header(ids[-1], Header(FORMATS[n % len(FORMATS)], int(rng.integers(0, 8))))
            files += 1
        group = store.save_group(None, ids, ids[0], None)
        keeper = store.path_of(ids[0]) or ""
        for copy in ids[1:]:
            match = Match(store.path_of(copy) or "", keeper, "near", "cosine", 0.97, 4, group=group,
                          keep=keeper)
            store.record_pair(copy, ids[0], match, tell=True)
            told += 1
        groups += 1
        if groups % 500 == 0:
            store.commit()
    store.commit()
    store.close()
    return groups, files


def listing(cache: Path, *options: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dupwatch", "groups", *options, "--cache", str(cache)],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--notices", type=int, default=100_000)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / f"groups-{args.notices}.db"
    if not cache.exists():
        started = time.perf_counter()
        groups, files = fill(cache.with_suffix(".tmp"), args.notices, np.random.default_rng(17))
        cache.with_suffix(".tmp").rename(cache)
        print(f"written: {args.notices:,} notices, {groups:,} groups, {files:,} files"
              f" in {time.perf_counter() - started:.0f} s")
    for options in ((), ("--json",), ("--csv",)):
        best = min(listing(cache, *options) for _ in range(3))
        shown = " ".join(("dupwatch groups", *options))
        print(f"`{shown}` over {args.notices:,} notices: {best:.2f} s")
        if not options:
            summary(f"`dupwatch groups`, {args.notices:,} notices", f"{best:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
