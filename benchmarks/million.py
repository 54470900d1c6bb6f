"""A cache of a million photos: its size on disk, how long a command takes to open it, and a query.

    python benchmarks/million.py [--rows 1000000] [--photos DIR] [--work DIR]

The rows are written through the store as a scan would write them, with fingerprints of real
photos: random crops, turns and mirror images of the shared photos, each fingerprinted, then
dealt out to the rows with a few bits of their hash flipped and a little noise on their pixels
(so no two rows are the same). Decoding a million files would take hours and measure nothing
more. "Cold" drops the cache file (and what is kept beside it) from the kernel's page cache
first (posix_fadvise), as after a reboot. "After a change" is the first query after the cache's
hashes changed (a scan): it reads them from the cache and saves the index beside it; the queries
after it load that. The queries run from compiled bytecode, as an installed dupwatch does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from benchmarks.common import arguments, summary
from dupwatch.bench.variants import photo_paths
from dupwatch.config import CacheConfig
from dupwatch.fingerprint import Plan, the_photo
from dupwatch.record import FileStat, Photo
from dupwatch.store import open_store

KINDS = 1000  # distinct real fingerprints the rows are drawn from


def kinds(photos: list[Path], count: int, rng: np.random.Generator) -> list[dict[str, bytes]]:
    """Fingerprints of `count` random crops of the photos (some mirrored), as a scan makes them."""
    methods = Plan(("chash", "cosine")).instances
    images = []
    for path in photos:
        with Image.open(path) as im:
            im.draft("L", (512, 512))
            images.append(im.convert("L"))
    out = []
    for _ in range(count):
        image = images[int(rng.integers(len(images)))]
        w, h = image.size
        keep = float(rng.uniform(0.5, 1.0))
        cw, ch = int(w * keep), int(h * keep)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = image.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        seen, _ = the_photo(crop, 256)
        out.append({m.key: m.to_bytes(m.fingerprint(seen)) for m in methods})
    return out


def fill(cache: CacheConfig, rows: int, pool: list[dict[str, bytes]], rng: np.random.Generator) -> float:
    """Write `rows` files into the new cache `cache` names; returns the seconds it took."""
    signature = Plan(("chash", "cosine")).signature
    store = open_store(cache)
    started = time.perf_counter()
    for n in range(rows):
        base = pool[n % len(pool)]
        flip = np.uint64(0)
        for bit in rng.integers(0, 64, size=3):
            flip |= np.uint64(1) << np.uint64(bit)
        chash = (np.frombuffer(base["chash/1"], dtype=np.uint64) ^ flip).tobytes()
        pixels = np.frombuffer(base["cosine/1"], dtype=np.uint8).astype(np.int16)
        pixels = np.clip(pixels + rng.integers(-2, 3, size=pixels.shape), 0, 255).astype(np.uint8)
        folder = f"/photos/{n // 1000:04d}"
        photo = Photo(path=f"{folder}/IMG_{n:07d}.jpg", stat=FileStat(2_500_000 + n, n * 1_000_000, 1, n),
                      content_hash=rng.bytes(32), width=4000, height=3000,
                      fingerprints={"chash/1": chash, "cosine/1": pixels.tobytes()})
        store.put(photo, signature)
        store.file_done()
        if n % 100_000 == 99_999:
            print(f"  {n + 1:,} rows, {time.perf_counter() - started:.0f} s", flush=True)
    store.close()
    return time.perf_counter() - started


def beside(path: Path) -> list[Path]:
    """What a query keeps beside the cache (the saved hash index)."""
    return sorted(path.parent.glob(f"{path.name}.hamming.*"))


def drop_page_cache(path: Path) -> None:
    for name in (path, path.with_name(path.name + "-wal"), *beside(path)):
        if name.exists():
            fd = os.open(name, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def query(cache: Path, photo: Path) -> float:
    started = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "dupwatch", "query", str(photo), "--cache", str(cache)],
                   check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    photos = photo_paths(args.photos)
    rng = np.random.default_rng(7)
    cache = args.work / f"million-{args.rows}.db"
    if not cache.exists():
        print(f"fingerprinting {KINDS} crops of {len(photos)} photos, then writing {args.rows:,} rows")
        pool = kinds(photos, KINDS, rng)
        seconds = fill(CacheConfig(path=cache.with_suffix(".tmp")), args.rows, pool, rng)
        cache.with_suffix(".tmp").rename(cache)
        print(f"written in {seconds:.0f} s ({args.rows / seconds:,.0f} rows/s)")
    size = cache.stat().st_size
    print(f"cache: {size / 2**20:,.0f} MiB, {size / args.rows:,.0f} bytes a photo")
    probe = photos[0]
    query(cache, probe)  # the bytecode compiled, and a cache of an older schema brought up to date
    for name in beside(cache):
        name.unlink()  # as after a scan that changed the hashes
    drop_page_cache(cache)
    changed = query(cache, probe)
    drop_page_cache(cache)
    cold = query(cache, probe)
    warm = min(query(cache, probe) for _ in range(3))
    print(f"`dupwatch query` of one photo: {cold:.2f} s cold, {warm:.2f} s warm;"
          f" {changed:.2f} s cold after the cache changed")
    summary(f"a cache of {args.rows:,} photos", f"{size / args.rows:,.0f} bytes a photo;"
            f" `dupwatch query` {cold:.2f} s cold, {warm:.2f} s warm, {changed:.2f} s after a change")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
