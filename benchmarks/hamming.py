"""Candidate query latency: one 64-bit hash against 1,000,000 cached hashes.

    python benchmarks/hamming.py [--rows 1000000] [--queries 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import peak_mib, summary
from dupwatch.index.hamming import HammingIndex


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--max-distance", type=int, default=12)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    values = rng.integers(0, np.iinfo(np.uint64).max, size=args.rows, dtype=np.uint64, endpoint=True)
    started = time.perf_counter()
    index = HammingIndex.of(np.arange(args.rows, dtype=np.int64), values)
    built = time.perf_counter() - started
    queries = values[rng.integers(0, args.rows, size=args.queries)] ^ np.uint64(0b10110)
    times = []
    for q in queries:
        t = time.perf_counter()
        ids, _ = index.search(q, args.max_distance)
        times.append(time.perf_counter() - t)
        assert len(ids) >= 1
    ms = np.array(times) * 1000
    print(f"{args.rows:,} hashes: built in {built:.2f} s; query (max distance {args.max_distance}):"
          f" mean {ms.mean():.2f} ms, p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms;"
          f" peak {peak_mib():.0f} MiB")
    summary(f"candidate query against {args.rows:,} cached hashes",
            f"mean {ms.mean():.2f} ms, p99 {np.percentile(ms, 99):.2f} ms",
            f"{peak_mib():.0f} MiB (all of it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
