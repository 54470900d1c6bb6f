"""Every benchmark, one after the other, then one table of the headline figures.

    make bench                      # or: python benchmarks/run.py [--photos DIR] [--work DIR]
    python benchmarks/run.py --quick   # small sizes: proves every script runs, figures not comparable

Each script also runs alone and prints more than the summary does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import SHARED_PHOTOS, SUMMARY

HERE = Path(__file__).resolve().parent

# Scripts in order, each with the arguments --quick gives it; True: it takes --photos and --work.
SCRIPTS: dict[str, tuple[list[str], bool]] = {
    "hamming.py": (["--rows", "100000", "--queries", "100"], False),
    "vectors.py": (["--rows", "5000", "--queries", "20", "--data", "embedding"], False),
    "speed.py": (["--count", "16", "--rescan-files", "1000"], True),
    "cnn.py": (["--count", "16"], True),
    "watch.py": (["--rounds", "5", "--burst", "100"], True),
    "notices.py": (["--copies", "100", "--runs", "1"], True),
    "geometry.py": ([], True),
    "raw.py": (["--count", "1", "--rounds", "1"], True),
    "detectors.py": (["--every", "8"], True),
    "accuracy.py": (["--only", "copy,jpeg-q50,crop-5,text"], True),
    "presets.py": (["--methods", "cosine,dhash"], True),
    "review.py": (["--copies", "1000", "--rounds", "3"], True),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check that everything runs")
    parser.add_argument("--photos", type=Path, default=SHARED_PHOTOS, help="a folder of distinct photos")
    parser.add_argument("--work", type=Path, default=Path("/tmp/dupwatch-bench"), help="for generated files")
    parser.add_argument("--only", help="comma-separated scripts to run (default: all)")
    args = parser.parse_args()
    scripts = args.only.split(",") if args.only else list(SCRIPTS)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "summary.jsonl"
        rows.touch()
        for script in scripts:
            quick, common = SCRIPTS[script]
            argv = [*(quick if args.quick else []),
                    *(["--photos", str(args.photos), "--work", str(args.work)] if common else [])]
            print(f"\n## {script} {' '.join(argv)}", flush=True)
            started = time.monotonic()
            code = subprocess.run([sys.executable, str(HERE / script), *argv], check=False,
                                  env={**os.environ, SUMMARY: str(rows)}).returncode
            print(f"({script}: {time.monotonic() - started:.0f} s)", flush=True)
            if code:
                print(f"{script} exited with {code}", flush=True)
                failed.append(script)
        print(f"\n## Summary{' (--quick: small sizes, not the reference figures)' if args.quick else ''}\n")
        print("| what | figure | peak memory |\n|---|---|---|")
        for line in rows.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            print(f"| {row['what']} | {row['figure']} | {row['memory']} |")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
