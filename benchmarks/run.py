"""Every benchmark, one after the other, then one table of the headline figures.

    make bench                      # or: python benchmarks/run.py [--photos DIR] [--work DIR]
    python benchmarks/run.py --quick   # small sizes: proves every script runs, figures not comparable

Each script also runs alone and prints more than the summary does. A full run (not --quick, not
--only) also writes the summary, dated and with the machine it ran on, to
docs/benchmarks-summary.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
    "groups.py": (["--notices", "2000"], True),
    "keepers.py": (["--count", "4", "--orders", "1"], True),
    "million.py": (["--rows", "20000"], True),
    "postgres.py": (["--rows", "20000"], True),
    "hosts.py": (["--rounds", "4"], True),
    "firstscan.py": (["--files", "2000"], True),
    "robust_million.py": (["--rows", "20000"], True),
}
WRITTEN = HERE.parent / "docs" / "benchmarks-summary.md"


def machine() -> str:
    """The machine in one line: CPU model, cores, memory, system, Python."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (OSError, ValueError):
        memory = 0.0
    return (f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, {platform.system()} {platform.release()},"
            f" Python {platform.python_version()}")


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
    began, load = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()[0]
    busiest = load
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
            busiest = max(busiest, os.getloadavg()[1])  # the last five minutes, script by script
            if code:
                print(f"{script} exited with {code}", flush=True)
                failed.append(script)
        print(f"\n## Summary{' (--quick: small sizes, not the reference figures)' if args.quick else ''}\n")
        table = ["| what | figure | peak memory |", "|---|---|---|"]
        for line in rows.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            table.append(f"| {row['what']} | {row['figure']} | {row['memory']} |")
        print("\n".join(table))
    if not args.quick and not args.only:
        WRITTEN.write_text(
            "# Benchmark summary\n\nWritten by `make bench` (`python benchmarks/run.py`), run from"
            f" {began} to {time.strftime('%H:%M')} on {machine()}; load average {load:.1f} at the start,"
            f" {os.getloadavg()[0]:.1f} at the end, up to {busiest:.1f} (over five minutes) between."
            f"{' Failed: ' + ', '.join(failed) + '.' if failed else ''} The tables and their"
            " commands are in [benchmarks](benchmarks.md).\n\n" + "\n".join(table) + "\n", encoding="utf-8")
        print(f"\nwritten: {WRITTEN}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
