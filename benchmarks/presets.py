"""Where each method's scores fall on real photos: what the named presets are made from.

For every method, on the shared photos and their generated variants (the same files as
`benchmarks/accuracy.py`): the lowest score of a plain copy (re-encoded, resized, EXIF-rotated:
the copies `strict` must still find), the 5th percentile and lowest of the mild edits (crop,
brightness, contrast, grey, blur, noise, text), and the highest score of two *different* photos
(what `loose` must stay above). For the candidate hash, the same as Hamming distances.

    python benchmarks/presets.py [--photos DIR] [--methods a,b] [--json]
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import arguments, summary
from dupwatch.bench.variants import CORE_TRANSFORMS, RECALL_ONE, photo_paths, write_variants
from dupwatch.fingerprint import Plan, fingerprint_now
from dupwatch.methods.base import Method
from dupwatch.methods.registry import METHODS, get_method


def _fingerprint(method: Method, plan: Plan, path: Path) -> np.ndarray:
    return method.from_bytes(fingerprint_now(str(path), plan).fingerprints[method.key])


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--methods", help="comma-separated (default: every method but geometry,"
                                          " and the CNN's only when torch is installed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = args.methods.split(",") if args.methods else [n for n in METHODS if n != "geometry"]
    if not args.methods:
        try:
            import torch  # noqa: F401
        except ImportError:
            names = [n for n in names if not n.startswith("cnn")]
    originals = photo_paths(args.photos)
    variants = list(write_variants(originals, args.work / "variants", CORE_TRANSFORMS))
    rows = []
    for name in names:
        method = get_method(name)
        plan = Plan((name,), method.options)
        mine = {p.stem: _fingerprint(method, plan, p) for p in originals}
        copies: list[float] = []
        edits: list[float] = []
        for v in variants:
            score = method.compare(_fingerprint(method, plan, v.path), mine[v.source])
            (copies if v.transform in RECALL_ONE else edits).append(score)
        distinct = [method.compare(a, b) for a, b in itertools.combinations(mine.values(), 2)]
        row = {"method": name, "default": method.default_threshold,
               "copies_min": min(copies), "edits_p5": float(np.percentile(edits, 5)),
               "edits_min": min(edits), "different_max": max(distinct),
               "different_p999": float(np.percentile(distinct, 99.9))}
        rows.append(row)
        summary(f"presets: {name}, plain copies ≥ / different photos ≤",
                f"{row['copies_min']:.3f} / {row['different_max']:.3f}")
        if not args.json:
            print(f"{name:14} default {row['default']:.3f}  plain copies ≥ {row['copies_min']:.3f}"
                  f"  mild edits: p5 {row['edits_p5']:.3f}, min {row['edits_min']:.3f}"
                  f"  different photos: max {row['different_max']:.3f}, p99.9 {row['different_p999']:.3f}",
                  flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
