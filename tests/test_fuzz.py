"""The fuzz benchmark's quick run (benchmarks/fuzz.py): thousands of mutated files of every format
dupwatch reads, each through `fingerprint_file` in a worker process. Every one must come back a
Photo or a SkipFile: no exception escaping, no file past the time limit, no worker dying."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.common import SHARED_PHOTOS
from benchmarks.fuzz import ENCODERS, QUICK_COUNT

FUZZ = Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz.py"


def test_quick_fuzz_raises_hangs_and_crashes_nothing(tmp_path: Path, photo_dir: Path) -> None:
    photos = SHARED_PHOTOS if SHARED_PHOTOS.is_dir() else photo_dir
    figures = tmp_path / "fuzz.json"
    run = subprocess.run(
        [sys.executable, str(FUZZ), "--quick", "--photos", str(photos), "--keep", str(tmp_path / "kept"),
         "--json", str(figures)],
        capture_output=True, text=True, timeout=600,
    )
    assert figures.exists(), run.stderr[-3000:]
    result = json.loads(figures.read_text())
    assert result["mutants"] == QUICK_COUNT
    assert set(result["per_format"]) == set(ENCODERS)  # every format was fuzzed
    report = run.stdout[-4000:]  # the summary names each failure and the kept file that shows it
    assert result["exceptions"] == {}, report
    assert result["crashes"] == 0, report
    assert result["over_time"] == 0, report
