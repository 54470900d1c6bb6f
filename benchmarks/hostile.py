"""Peak memory of fingerprinting one hostile or enormous file, each in a process of its own.

    python benchmarks/hostile.py [--photos DIR] [--work DIR]

Writes a 9400×9400 RGB PNG and a 9400×9400 palette PNG (checkerboards, a few hundred KB each:
what a decompression bomb looks like), a 100-megapixel JPEG (a shared photo enlarged to
12240×8160) and a sparse 3 GB file named big.jpg, plus an ordinary 12-megapixel JPEG for
scale. Each is fingerprinted by `fingerprint_file` with the default methods (hash, cosine) in a
fresh Python process, as a scan's worker would, which prints what happened and its peak RSS
(VmHWM: `ru_maxrss` would carry this process's own peak across fork and exec). The target:
at most 300 MB for any of them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image

from benchmarks.common import arguments, summary
from dupwatch.bench.variants import photo_paths
from tests.test_hostile_files import write_big_png

CHILD = """
import sys, time
from dupwatch.fingerprint import Plan, fingerprint_file
from dupwatch.errors import SkipFile
start = time.perf_counter()
result = fingerprint_file(sys.argv[1], Plan(("hash", "cosine")))
seconds = time.perf_counter() - start
if isinstance(result, SkipFile):
    what = f"skipped: {result.reason}"
else:
    what = f"fingerprinted ({result.width}x{result.height})"
# VmHWM, not ru_maxrss: Linux carries the parent's peak across fork and exec into ru_maxrss.
peak = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(f"{peak}\\t{seconds:.2f}\\t{what}")
"""


def files(photos: Path, work: Path) -> dict[str, Path]:
    work.mkdir(parents=True, exist_ok=True)
    out = {"12 MP JPEG (for scale)": work / "12mp.jpg", "9400×9400 RGB PNG": work / "rgb.png",
           "9400×9400 palette PNG": work / "palette.png", "100 MP JPEG": work / "100mp.jpg",
           "3 GB sparse file named big.jpg": work / "big.jpg"}
    original = photo_paths(photos)[0]
    for size, path in (((4000, 3000), out["12 MP JPEG (for scale)"]), ((12240, 8160), out["100 MP JPEG"])):
        if not path.exists():
            with Image.open(original) as im:
                im.convert("RGB").resize(size).save(path, "JPEG", quality=90)
    if not out["9400×9400 RGB PNG"].exists():
        write_big_png(out["9400×9400 RGB PNG"], 9400, palette=False)
    if not out["9400×9400 palette PNG"].exists():
        write_big_png(out["9400×9400 palette PNG"], 9400, palette=True)
    with open(out["3 GB sparse file named big.jpg"], "wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        os.truncate(f.fileno(), 3 * 2**30)
    return out


def main() -> None:
    args = arguments(__doc__.splitlines()[0]).parse_args()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    print("| file | size on disk | peak RSS | seconds | outcome |\n|---|---|---|---|---|")
    for name, path in files(args.photos, args.work / "hostile").items():
        proc = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                              env=env, timeout=600, check=True)
        rss_kib, seconds, outcome = proc.stdout.strip().split("\t")
        peak = f"{int(rss_kib) / 1024:.0f} MiB"
        print(f"| {name} | {path.stat().st_size / 2**20:,.1f} MiB | {peak} | {seconds} | {outcome} |")
        summary(f"fingerprint one hostile file: {name}", outcome, peak)


if __name__ == "__main__":
    main()
