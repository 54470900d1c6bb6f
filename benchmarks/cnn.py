"""CNN embedding throughput on 12-megapixel JPEGs, end to end (decode included), and model time.

    python benchmarks/cnn.py [--photos DIR] [--count 208] [--batch 32]

The scan runs as a user would run it (`dupwatch scan` in its own process) with
`confirm.method: cnn`, on a cold cache, so every photo is decoded and embedded once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import arguments, peak_mib
from benchmarks.speed import large_jpegs, scan
from dupwatch.bench.variants import photo_paths


def model_only(batch: int, rounds: int = 4) -> float:
    from dupwatch.methods import efficientnet

    embedder = efficientnet.load("lite0", None)
    images = np.random.default_rng(0).integers(0, 255, (batch, 224, 224, 3), dtype=np.uint8)
    embedder.embed(images)  # warm-up: first calls pick kernels and grow the allocator
    started = time.perf_counter()
    for _ in range(rounds):
        embedder.embed(images)
    return batch * rounds / (time.perf_counter() - started)


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=416)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    big = large_jpegs(photo_paths(args.photos), args.work / f"12mp-{args.count}", args.count)
    batch = f"cnn:\n  batch_size: {args.batch}\n"
    modes = {"cnn confirm": "confirm:\n  method: cnn\n" + batch,
             "robust mode": "robust:\n  enabled: true\n" + batch}
    for name, text in modes.items():
        config = args.work / "cnn.yaml"
        config.write_text(text)
        cache = args.work / "cnn.db"
        cache.unlink(missing_ok=True)
        run = scan(big[0].parent, cache, "--config", str(config))
        print(f"scan, {name}, {len(big)} 4000×3000 JPEGs: {len(big) / run.seconds:6.1f} images/s end to end"
              f" (process start and model load included), {1000 * run.cpu / len(big):.1f} ms CPU an image"
              f" (all processes), peak {run.peak:.0f} MiB with its workers")
    for size in (args.batch, 32):
        rate = model_only(size)
        print(f"model alone, Lite0, batch {size}, {os.cpu_count()} threads: {rate:6.1f} images/s;"
              f" this process peak {peak_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
