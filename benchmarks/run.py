"""Every benchmark, one after the other: `make bench` (or `python benchmarks/run.py`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("hamming.py", "vectors.py", "speed.py", "cnn.py", "watch.py", "notices.py", "accuracy.py"):
    print(f"\n## {script}", flush=True)
    code = subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=False).returncode
    if code:
        print(f"{script} exited with {code}", flush=True)
