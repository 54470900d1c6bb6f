"""Robust mode with a million photos in the cache: the watcher's start, its memory, and a query.

    python benchmarks/robust_million.py [--rows 1000000] [--photos DIR] [--work DIR]

The rows are `million.py`'s (real photos' hashes and pixel grids, dealt out with noise) plus a
CNN embedding each, drawn like EfficientNet-Lite0's (`vectors.py`'s "embedding" vectors), written
through the store into DIR/robust-million-ROWS.db once. Then `dupwatch watch --robust` of an empty
folder: seconds to "caught up" (READY=1), and the peak memory of its whole tree once a photo and
its copy have landed (the workers with the model, and the main process with the hash index and
the embeddings' codes); and a
`dupwatch query --robust` of one photo.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import arguments, summary, watch_start
from benchmarks.million import KINDS, kinds
from benchmarks.vectors import draw
from dupwatch.bench.variants import photo_paths
from dupwatch.fingerprint import Plan
from dupwatch.methods.registry import get_method
from dupwatch.record import FileStat, Photo
from dupwatch.store.sqlite import SqliteStore


def fill(cache: Path, rows: int, pool: list[dict[str, bytes]], rng: np.random.Generator) -> float:
    cnn = get_method("cnn")
    signature = Plan(("chash", "cosine", "cnn")).signature
    store = SqliteStore(cache)
    started = time.perf_counter()
    for start in range(0, rows, 10_000):
        embeddings = draw(rng, min(10_000, rows - start), "embedding")
        for offset, embedding in enumerate(embeddings):
            n = start + offset
            base = pool[n % len(pool)]
            chash = (np.frombuffer(base["chash/1"], dtype=np.uint64)
                     ^ np.uint64(1 << int(rng.integers(64)))).tobytes()
            photo = Photo(path=f"/photos/{n // 1000:04d}/IMG_{n:07d}.jpg",
                          stat=FileStat(2_500_000 + n, n * 1_000_000, 1, n), content_hash=rng.bytes(32),
                          width=4000, height=3000,
                          fingerprints={"chash/1": chash, "cosine/1": base["cosine/1"],
                                        cnn.key: embedding.tobytes()})
            store.put(photo, signature)
            store.file_done()
        print(f"  {start + len(embeddings):,} rows, {time.perf_counter() - started:.0f} s", flush=True)
    store.close()
    return time.perf_counter() - started


def landed(folder: Path, photo: Path) -> Callable[[Iterator[str]], None]:
    """A photo and its copy land in `folder`: the workers load the model for the first."""

    def then(lines: Iterator[str]) -> None:
        shutil.copy(photo, folder / f"a{photo.suffix}")
        time.sleep(1.5)
        shutil.copy(photo, folder / f"b{photo.suffix}")
        for line in lines:
            if " duplicates " in line:
                return

    return then


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    photos = photo_paths(args.photos)
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / f"robust-million-{args.rows}.db"
    if not cache.exists():
        rng = np.random.default_rng(7)
        print(f"fingerprinting {KINDS} crops of {len(photos)} photos, then writing {args.rows:,} rows")
        pool = kinds(photos, KINDS, rng)
        seconds = fill(cache.with_suffix(".tmp"), args.rows, pool, rng)
        cache.with_suffix(".tmp").rename(cache)
        print(f"written in {seconds:.0f} s ({args.rows / seconds:,.0f} rows/s)")
    size = cache.stat().st_size
    print(f"cache: {size / 2**20:,.0f} MiB, {size / args.rows:,.0f} bytes a photo")
    with tempfile.TemporaryDirectory(prefix="dupwatch-robust-million-") as scratch:
        starts = []
        for n in range(2):
            folder = Path(scratch) / f"photos-{n}"
            folder.mkdir()
            starts.append(watch_start([str(folder), "--cache", str(cache), "--robust"],
                                      landed(folder, photos[0])))
    ready, peak = min(s[0] for s in starts), max(s[1] for s in starts)
    print(f"`dupwatch watch --robust` with {args.rows:,} cached photos: caught up (READY=1) after"
          f" {', '.join(f'{s[0]:.1f}' for s in starts)} s; peak {peak:,.0f} MiB, the whole tree")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dupwatch", "query", str(photos[0]), "--cache", str(cache),
                    "--robust"], check=True, capture_output=True)
    took = time.perf_counter() - started
    print(f"`dupwatch query --robust` of one photo: {took:.1f} s")
    summary(f"robust mode with {args.rows:,} cached photos",
            f"`dupwatch watch --robust` ready after {ready:.1f} s; `query --robust` {took:.1f} s",
            f"{peak:,.0f} MiB, the whole tree")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
