"""Camera raw files: decoding the preview the camera embedded against LibRaw rendering the mosaic.

    python benchmarks/raw.py [--photos DIR] [--work DIR] [--count 4] [--rounds 3]

Writes `count` 12-megapixel DNGs (4000×3000, tests/dng.py: a 16-bit RGGB mosaic, 24 MB, and a
full-size JPEG preview, as cameras write them) from the shared photos, then times each way of
getting a picture out of them, per file, in this process: dupwatch's decode at the 64 pixels
the default methods ask for and at geometry's 375 (the preview, draft-decoded), the fallback
for a file without a usable preview (LibRaw's half-size render), and a full render with LibRaw's
defaults (AHD demosaicing), what a raw converter does; and, for scale, the SHA-256 the pipeline
takes of every file's bytes. Wall-clock and CPU time: LibRaw may run OpenMP threads while it
renders.
"""

from __future__ import annotations

import hashlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import rawpy
from PIL import Image

from benchmarks.common import arguments, summary
from dupwatch.bench.variants import photo_paths
from dupwatch.decode import decode
from dupwatch.methods.geometry import Geometry
from tests.dng import dng_bytes

SIZE = (4000, 3000)


def dngs(originals: list[Path], folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n in range(count):
        target = folder / f"IMG_{n:04d}.dng"
        if not target.exists():
            with Image.open(originals[n % len(originals)]) as im:
                big = im.convert("RGB").resize(SIZE, Image.Resampling.BICUBIC)
            target.write_bytes(dng_bytes(big, quality=92))
        out.append(target)
    return out


def _half(data: bytes) -> object:
    with rawpy.imread(io.BytesIO(data)) as raw:
        return raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)


def _full(data: bytes) -> object:
    with rawpy.imread(io.BytesIO(data)) as raw:
        return raw.postprocess(use_camera_wb=True, output_bps=8)


def timed(files: list[bytes], rounds: int, work: Callable[[bytes], object]) -> tuple[float, float]:
    """Median ms per file of wall-clock and of CPU (all this process's threads) over the rounds."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for data in files:
            work(data)
        walls.append((time.perf_counter() - wall) * 1000 / len(files))
        cpus.append((time.process_time() - cpu) * 1000 / len(files))
    return statistics.median(walls), statistics.median(cpus)


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--count", type=int, default=4, help="12-megapixel DNGs to write and decode")
    parser.add_argument("--rounds", type=int, default=3, help="each timing is the median of these")
    args = parser.parse_args()
    paths = dngs(photo_paths(args.photos), args.work / f"dng-{args.count}", args.count)
    files = [p.read_bytes() for p in paths]
    mb = sum(map(len, files)) / len(files) / 1e6
    print(f"{len(files)} DNGs of {SIZE[0]}×{SIZE[1]}, {mb:.1f} MB each; median of {args.rounds} rounds,"
          f" LibRaw {'.'.join(map(str, rawpy.libraw_version))}")
    near = Geometry.needs_size
    ways: dict[str, Callable[[bytes], object]] = {
        "preview, 64 px (dupwatch decode)": lambda d: decode("x.dng", d, 64),
        f"preview, {near} px (dupwatch decode)": lambda d: decode("x.dng", d, near),
        "SHA-256 of the file (as for any file)": lambda d: hashlib.sha256(d).digest(),
        "mosaic, half size (the fallback)": _half,
        "mosaic, full render (AHD)": _full,
    }
    figures = {}
    for name, work in ways.items():
        wall, cpu = timed(files, args.rounds, work)
        figures[name] = wall, cpu
        print(f"  {name:40s} {wall:7.1f} ms a file, {cpu:7.1f} ms of CPU")
    preview = figures["preview, 64 px (dupwatch decode)"]
    half = figures["mosaic, half size (the fallback)"]
    summary("12 MP DNG: embedded preview / half-size render",
            f"{preview[0]:.0f} / {half[0]:.0f} ms a file ({preview[1]:.0f} / {half[1]:.0f} ms CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
