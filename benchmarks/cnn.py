"""CNN embedding throughput on 12-megapixel JPEGs, end to end (decode included), and where it goes.

    python benchmarks/cnn.py [--photos DIR] [--count 416] [--batch 16]

The scan runs as a user would run it (`dupwatch scan` in its own process) with
`confirm.method: cnn`, then in robust mode, on a cold cache, so every photo is decoded and
embedded once. Besides images/s it prints the CPU time of the scan and all its processes per
image, which other work on the machine disturbs less than the wall clock: on two cores,
2,000 / (ms a photo) is the rate a quiet machine would reach.

Then the same work one stage at a time, in this process and on one thread as each worker runs
it, so the sum is the floor of the CPU time a photo costs, and the model alone.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import arguments, peak_mib, summary
from benchmarks.speed import large_jpegs, scan
from dupwatch.bench.variants import photo_paths
from dupwatch.decode import decode
from dupwatch.fingerprint import read
from dupwatch.methods.base import Options
from dupwatch.methods.registry import get_method


def stages(paths: list[Path], batch: int) -> dict[str, float]:
    """CPU ms a photo of each thing a worker does to it, on one thread."""
    cnn = get_method("cnn", options=Options(cnn_batch_size=batch, cnn_threads=1))
    candidates = get_method("hash")
    spent: dict[str, float] = {}

    @contextmanager
    def clock(stage: str) -> Iterator[None]:
        started = time.process_time()
        yield
        spent[stage] = spent.get(stage, 0.0) + time.process_time() - started

    prepared = []
    for path in paths:
        with clock("read the file"):
            data, _ = read(str(path))
        with clock("sha256"):
            hashlib.sha256(data).digest()
        with clock("draft decode to ≥ 224 px"):
            image = decode(str(path), data, cnn.needs_size).image
        with clock("average hash"):
            candidates.fingerprint(image)
        with clock("resize to 224×224"):
            prepared.append(cnn.prepare(image))
    cnn.fingerprint_batch(prepared[:batch])  # warm-up: load the model, grow the allocator
    for start in range(0, len(prepared), batch):
        with clock(f"model, batch {batch}"):
            cnn.fingerprint_batch(prepared[start:start + batch])
    return {stage: 1000 * seconds / len(paths) for stage, seconds in spent.items()}


def model_only(batch: int, threads: int, rounds: int = 4) -> tuple[float, float]:
    """Images/s and CPU ms an image of the model alone on random pixels."""
    from dupwatch.methods import efficientnet

    embedder = efficientnet.load("lite0", None)
    images = np.random.default_rng(0).integers(0, 255, (batch, 224, 224, 3), dtype=np.uint8)
    import torch

    torch.set_num_threads(threads)
    embedder.embed(images)  # warm-up: first calls pick kernels and grow the allocator
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        embedder.embed(images)
    n = batch * rounds
    return n / (time.perf_counter() - started), 1000 * (time.process_time() - cpu) / n


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=416)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    big = large_jpegs(photo_paths(args.photos), args.work / f"12mp-{args.count}", args.count)
    cores = os.cpu_count() or 1
    batch = f"cnn:\n  batch_size: {args.batch}\n"
    # Geometry off first: the CNN's own throughput. Then as users get it with OpenCV installed:
    # grey-zone pairs verified by geometry (features found when a pair needs them), and robust
    # mode, where every photo's features are found in the workers.
    modes = {"cnn confirm, geometry off": "confirm:\n  method: cnn\ngeometry:\n  enabled: false\n" + batch,
             "cnn confirm, geometry on": "confirm:\n  method: cnn\n" + batch,
             "robust mode, geometry on": "robust:\n  enabled: true\n" + batch}
    for name, text in modes.items():
        config = args.work / "cnn.yaml"
        config.write_text(text)
        cache = args.work / "cnn.db"
        cache.unlink(missing_ok=True)
        run = scan(big[0].parent, cache, "--config", str(config))
        ms = 1000 * run.cpu / len(big)
        print(f"scan, {name}, {len(big)} 4000×3000 JPEGs, batch {args.batch}: {len(big) / run.seconds:5.1f}"
              f" images/s end to end (process start and model load included); {ms:.1f} ms CPU an image"
              f" in all its processes (≈ {cores * 1000 / ms:.0f} images/s on {cores} idle cores);"
              f" peak {run.peak:.0f} MiB resident with its workers, {run.pss:.0f} MiB proportional"
              " (shared pages once)", flush=True)
        summary(f"`dupwatch scan`, {name}, {len(big)} 12 MP JPEGs, cold cache",
                f"{len(big) / run.seconds:.1f} images/s end to end; {ms:.1f} ms CPU an image",
                f"{run.peak:.0f} MiB with its workers ({run.pss:.0f} MiB proportional)")

    cost = stages(big[:96], args.batch)
    print(f"one worker's CPU a photo, stage by stage, one thread ({len(big[:96])} photos):")
    for stage, ms in cost.items():
        print(f"  {stage:26s} {ms:5.1f} ms")
    total = sum(cost.values())
    print(f"  {'sum':26s} {total:5.1f} ms: at most {cores * 1000 / total:.0f} images/s on {cores} cores")
    for size, threads in ((1, 1), (args.batch, 1), (32, 1), (args.batch, cores)):
        rate, ms = model_only(size, threads)
        print(f"model alone, Lite0, batch {size:2d}, {threads} thread(s): {rate:5.1f} images/s,"
              f" {ms:.1f} ms CPU an image; this process peak {peak_mib():.0f} MiB")
        summary(f"EfficientNet-Lite0 alone, batch {size}, {threads} thread(s)", f"{rate:.1f} images/s",
                f"{peak_mib():.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
