"""What every benchmark shares: where the photos are, a work folder, and peak memory."""

from __future__ import annotations

import argparse
import resource
from pathlib import Path

SHARED_PHOTOS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "photos"


def arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--photos", type=Path, default=SHARED_PHOTOS,
                        help="a folder of distinct photos (default: ../shared/data/photos)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dupwatch-bench"),
                        help="where generated files go (kept between runs)")
    return parser


def peak_mib(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024  # Linux reports KiB
