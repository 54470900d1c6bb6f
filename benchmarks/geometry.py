"""Geometry's cost and its false alarms, on real photos.

    python benchmarks/geometry.py [--photos DIR]

Prints feature extraction (ms of CPU per image, on the decode the pipeline makes), verification
(ms per candidate pair), cache bytes per image, and how many traps are confirmed: the left and
right, top and bottom, and mirrored-left and right parts of each photo of repetitive structure
(`dupwatch/bench/traps.py`), every pair of those photos, and every pair of all the distinct
photos. Traps are checked by geometry alone, without the CNN or hash floor the pipeline puts in
front of it: the worst case. A pair whose first fit asks for a closer look (`geometry.closer`) is
judged again as the pipeline does it: the larger photo's keypoints found again where the other lies.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from benchmarks.common import arguments, summary
from dupwatch.bench.traps import repetitive, traps_of
from dupwatch.bench.variants import photo_paths
from dupwatch.candidates.geometry import decoded
from dupwatch.decode import decode
from dupwatch.methods.geometry import (
    DETECT,
    Features,
    Geometry,
    Verdict,
    closer,
    extract,
    extract_box,
    verify,
)

LOOKS = [0]  # closer looks taken


def judged(a: Features, b: Features, image_a: Image.Image | Path, image_b: Image.Image | Path) -> Verdict:
    """geometry's verdict, with the closer look the pipeline takes when a first fit asks for one."""
    first = verify(a, b)
    look = closer(a, b, first) if first.score == 0 else None
    if look is None:
        return first
    LOOKS[0] += 1
    source, frame = (image_a, a) if look.on_a else (image_b, b)
    image = decoded(str(source), look.size(frame)) if isinstance(source, Path) else source
    if image is None:
        return first
    found = extract_box(image, frame, look.box)
    again = verify(found, b) if look.on_a else verify(a, found)
    return again if again.score > first.score else first


def main() -> int:
    args = arguments(__doc__ or "").parse_args()
    photos = photo_paths(args.photos)
    features: dict[str, Features] = {}
    files = {path.stem: path for path in photos}
    cpu = 0.0
    for path in photos:
        image = decode(str(path), path.read_bytes(), Geometry.needs_size).image
        started = time.process_time()
        features[path.stem] = extract(image)
        cpu += time.process_time() - started
    extract_ms = 1000 * cpu / len(photos)
    sizes = [len(f.pack()) for f in features.values()]
    print(f"feature extraction: {extract_ms:.1f} ms of CPU per image ({len(photos)} photos,"
          f" SIFT at {DETECT} px)")
    print(f"cache: {np.mean(sizes):.0f} bytes per image on average, {max(sizes)} at most")

    pairs = list(itertools.combinations(sorted(features), 2))
    started = time.process_time()
    different = [(a, b, verify(features[a], features[b])) for a, b in pairs]
    verify_ms = 1000 * (time.process_time() - started) / len(pairs)
    print(f"verification: {verify_ms:.2f} ms of CPU per pair ({len(pairs)} pairs, plain and mirrored)")
    different = [(a, b, judged(features[a], features[b], files[a], files[b]) if v.score == 0 else v)
                 for a, b, v in different]
    confirmed = [(a, b, v) for a, b, v in different if v.score > 0]
    print(f"different photos confirmed: {len(confirmed)} of {len(pairs)} pairs")

    scenes = repetitive(photos)
    traps = [t for p in scenes for t in traps_of(p)]
    fooled = []
    for trap in traps:
        v = judged(extract(trap.a), extract(trap.b), trap.a, trap.b)
        if v.score > 0:
            fooled.append((trap.name, v))
    among = [(a, b, v) for a, b, v in different
             if a in {p.stem for p in scenes} and b in {p.stem for p in scenes}]
    print(f"traps confirmed: {len(fooled)} of {len(traps)} parts of {len(scenes)} photos of repetitive"
          f" structure; {sum(v.score > 0 for _, _, v in among)} of {len(among)} pairs of those photos;"
          f" {LOOKS[0]} closer looks taken")
    for name, v in fooled + [(f"{a} | {b}", v) for a, b, v in confirmed]:
        print(f"  confirmed: {name}: {v.inliers} inliers, ratio {v.inlier_ratio:.2f},"
              f" coverage {v.coverage:.2f}")
    summary("geometry: features, verification", f"{extract_ms:.0f} ms/image, {verify_ms:.1f} ms/pair,"
            f" {np.mean(sizes) / 1024:.0f} KiB/image")
    summary("geometry: false confirmations", f"{len(fooled)} of {len(traps)} traps, {len(confirmed)} of"
            f" {len(pairs)} different pairs")
    return 1 if fooled or confirmed else 0


if __name__ == "__main__":
    raise SystemExit(main())
