"""A first scan as the cache grows: files a second over each tenth of a scan of many small photos.

    python benchmarks/firstscan.py [--files 100000] [--photos DIR] [--work DIR]

The files are small JPEGs (160×120) cut from the shared photos at random places, a tenth to a
quarter of a photo's side each: mostly distinct, some near one another, as in a real library.
The scan is the pipeline `dupwatch scan` runs, in this process, with its worker processes, in
the default install's mode (geometry off: no OpenCV; `--geometry` turns it on); each file's
result is timed as it comes, and the files a second of each tenth are printed: a search or a
read that grows with the cache shows as a falling rate.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from benchmarks.common import TreePeak, arguments, summary
from dupwatch.bench.variants import photo_paths
from dupwatch.config import Config
from dupwatch.errors import SkipFile
from dupwatch.pipeline import Duplicate, Indexed, Pipeline, default_workers
from dupwatch.store import open_store


def small_photos(photos: list[Path], folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / f"made-{count}"
    paths = [folder / f"{n // 1000:03d}" / f"IMG_{n:06d}.jpg" for n in range(count)]
    if done.exists():
        return paths
    rng = np.random.default_rng(3)
    sources = []
    for path in photos:
        with Image.open(path) as im:
            im.draft("RGB", (800, 800))
            sources.append(im.convert("RGB"))
    for n, target in enumerate(paths):
        image = sources[int(rng.integers(len(sources)))]
        w, h = image.size
        keep = float(rng.uniform(0.1, 0.25))
        cw, ch = int(w * keep), int(h * keep)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        target.parent.mkdir(exist_ok=True)
        small = image.crop((x, y, x + cw, y + ch)).resize((160, 120), Image.Resampling.BILINEAR)
        small.save(target, quality=85)
        if n % 10_000 == 9_999:
            print(f"  {n + 1:,} files made", flush=True)
    done.touch()
    return paths


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--geometry", action="store_true", help="with geometry's check (OpenCV)")
    args = parser.parse_args()
    paths = small_photos(photo_paths(args.photos), args.work / "firstscan-2", args.files)
    with tempfile.TemporaryDirectory(prefix="dupwatch-firstscan-") as tmp:
        config = Config.model_validate({"cache": {"path": Path(tmp) / "cache.db"},
                                        "geometry": {"enabled": args.geometry}})
        store = open_store(config.cache)
        pipeline = Pipeline(config, store)
        memory = TreePeak(os.getpid())
        times = []
        started = time.perf_counter()
        skipped = duplicates = 0
        for event in pipeline.ingest([str(p) for p in paths], default_workers(config.scan.workers)):
            if isinstance(event, Indexed):
                times.append(time.perf_counter())
            elif isinstance(event, SkipFile):
                skipped += 1
            elif isinstance(event, Duplicate):
                duplicates += 1
        pipeline.close()
        store.close()
        peak = memory.stop()
    tenth = max(1, len(times) // 10)
    rates = [tenth / (times[i + tenth - 1] - (times[i - 1] if i else started))
             for i in range(0, len(times) - tenth + 1, tenth)]
    total = times[-1] - started
    print(f"first scan of {len(times):,} small JPEGs ({skipped} skipped, {duplicates:,} duplicates)"
          f" in {total:.0f} s,"
          f" {len(times) / total:,.0f} files/s; peak {peak:.0f} MiB with its workers")
    print("files a second, each tenth of the scan: " + ", ".join(f"{r:,.0f}" for r in rates))
    print(f"last tenth against the first: {rates[-1] / rates[0]:.2f}")
    summary(f"first scan of {len(times):,} small JPEGs into an empty cache",
            f"{len(times) / total:,.0f} files/s; last tenth {rates[-1] / rates[0]:.2f} × the first",
            f"{peak:.0f} MiB with its workers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
