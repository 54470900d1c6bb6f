"""Local feature detectors compared under geometry's own matching rules, on real photos.

    python benchmarks/detectors.py [--photos DIR] [--every 3]

For SIFT at 500 and 640 px and ORB at 500 px (AKAZE too, where this OpenCV has it): CPU ms to
find a photo's keypoints, how many hard copies of every `--every`-th shared photo (60 % crop,
10° and 25° turns onto black corners, 25° straightening, perspective, and two mild ones, 25 %
resize and blur) geometry confirms against their originals, and how many pairs of different
photos it confirms. Each detector's matches go through the same ratio test, homography and
guards (`geometry.judge`); only the descriptor distance differs (L2 for SIFT, Hamming for the
binary ones). Mirrored matching is SIFT's own and is left out here.
"""

from __future__ import annotations

import importlib
import itertools
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import arguments, summary
from dupwatch.bench.variants import CORE_TRANSFORMS, HARD_TRANSFORMS, photo_paths, write_variants
from dupwatch.decode import decode
from dupwatch.methods import geometry
from dupwatch.methods.geometry import Features

cv2: Any = importlib.import_module("cv2")  # typed loosely: OpenCV 5's stubs lack the detectors

HARD = ("crop-60", "rot10", "rot25", "straighten25", "perspective")
TRANSFORMS = {**{name: HARD_TRANSFORMS[name] for name in HARD},
              "resize-25": CORE_TRANSFORMS["resize-25"], "blur": CORE_TRANSFORMS["blur"]}


def detectors() -> dict[str, tuple[Any, int, int]]:
    """Name → (detector, long side it runs at, descriptor norm)."""
    out = {"SIFT 500 px": (cv2.SIFT_create(nfeatures=geometry.FEATURES), 500, cv2.NORM_L2),
           "SIFT 640 px": (cv2.SIFT_create(nfeatures=geometry.FEATURES), 640, cv2.NORM_L2),
           "ORB 500 px": (cv2.ORB_create(nfeatures=geometry.FEATURES), 500, cv2.NORM_HAMMING)}
    if hasattr(cv2, "AKAZE_create"):
        out["AKAZE 500 px"] = (cv2.AKAZE_create(), 500, cv2.NORM_HAMMING)
    return out


def confirmed(a: Features, b: Features, norm: int) -> bool:
    if len(a.descriptors) < 2 or len(b.descriptors) < 2:
        return False
    query, train = (a.descriptors, b.descriptors) if norm == cv2.NORM_HAMMING else \
        (a.descriptors.astype("float32"), b.descriptors.astype("float32"))
    pairs = cv2.BFMatcher(norm).knnMatch(query, train, k=2)
    good = [(p[0].queryIdx, p[0].trainIdx) for p in pairs
            if len(p) == 2 and p[0].distance < geometry.RATIO * p[1].distance]
    return geometry.judge(a, b, good).score >= geometry.Geometry.default_threshold


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--every", type=int, default=3, help="take every n-th photo")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    originals = photo_paths(args.photos)[::args.every]
    variants = list(write_variants(originals, args.work / "detectors", TRANSFORMS))
    size = max(side for _, side, _ in detectors().values()) * 3 // 4  # as Geometry.needs_size does
    paths = [*originals, *(v.path for v in variants)]
    images = {p: decode(str(p), p.read_bytes(), size).image for p in paths}
    n = len(originals)
    print(f"{n} photos, {len(variants)} copies; confirmed copies per transform, of {n}")
    print(f"| detector | ms CPU a photo | {' | '.join(TRANSFORMS)} | different pairs confirmed |")
    print(f"|---|---|{'---|' * len(TRANSFORMS)}---|")
    for name, (detector, side, norm) in detectors().items():
        started = time.process_time()
        features = {p: geometry.extract(image, detector, side) for p, image in images.items()}
        ms = 1000 * (time.process_time() - started) / len(images)
        by_stem = {p.stem: features[p] for p in originals}
        found = {t: sum(confirmed(features[v.path], by_stem[v.source], norm)
                        for v in variants if v.transform == t) for t in TRANSFORMS}
        false = sum(confirmed(features[a], features[b], norm)
                    for a, b in itertools.combinations(originals, 2))
        pairs = n * (n - 1) // 2
        print(f"| {name} | {ms:.0f} | {' | '.join(str(found[t]) for t in TRANSFORMS)} | {false} of {pairs} |",
              flush=True)
        summary(f"geometry with {name}", f"{ms:.0f} ms a photo; 60 % crops {found['crop-60']}/{n},"
                f" 25° turns {found['rot25']}/{n}; {false} false")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
