"""The review page with 10,000 notices: how long the list takes to open, paged.

    python benchmarks/review.py [--photos DIR] [--copies 10000] [--rounds 20]

The folder holds the distinct photos and 10,000 byte copies of them (hard links); one cold
`dupwatch scan` makes 10,000 real notices. Then a real `dupwatch review` process serves them on
127.0.0.1 and each page is fetched over real HTTP, as a browser would: the HTML, then every
thumbnail on it over 6 connections at once. *Cold*: the first time (thumbnails made from the
photos then); *warm*: the median of `--rounds` later fetches.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import arguments, summary
from benchmarks.notices import folder_of_copies
from dupwatch.bench.variants import photo_paths

CONNECTIONS = 6  # what a browser opens to one host


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310  (http://127.0.0.1)
        body: bytes = response.read()
    return body


def open_page(base: str, path: str) -> tuple[float, float, int]:
    """Seconds to the HTML, seconds to the HTML and every thumbnail on it, and how many."""
    started = time.perf_counter()
    html = fetch(base + path).decode()
    first = time.perf_counter() - started
    images = sorted(set(re.findall(r'src="/(file/\d+/\w+\.jpg)"', html)))
    with ThreadPoolExecutor(CONNECTIONS) as pool:
        list(pool.map(lambda image: fetch(base + image), images))
    return first, time.perf_counter() - started, len(images)


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--copies", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    work = args.work / "review"
    folder, cache = work / "photos", work / "index.sqlite3"
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("index.sqlite3*"):
        stale.unlink()
    thumbnails = work / "thumbnails"
    shutil.rmtree(thumbnails, ignore_errors=True)
    config = work / "config.yaml"
    config.write_text(f"notices: {{log: {{enabled: false}}}}\nreview: {{thumbnails: {thumbnails}}}\n")
    files = folder_of_copies(photo_paths(args.photos), folder, args.copies)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dupwatch", "scan", str(folder), "--cache", str(cache),
                    "--config", str(config)], check=True, stdout=subprocess.DEVNULL)
    print(f"{files} files scanned in {time.perf_counter() - started:.1f} s: {args.copies} notices")

    server = subprocess.Popen([sys.executable, "-m", "dupwatch", "review", "--bind", "127.0.0.1:0",
                               "--cache", str(cache), "--config", str(config)],
                              stderr=subprocess.PIPE, text=True)
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        found = re.search(r"review page on (http://\S+)", line)
        if not found:
            raise SystemExit(f"dupwatch review did not start: {line}")
        base = found[1]
        pages = -(-args.copies // 30)
        cases = [("first page", ""), (f"page {pages // 2} of {pages}", f"?page={pages // 2}"),
                 ("filtered: exact, in a folder, all", f"?status=all&kind=exact&folder={folder}"),
                 ("a pair's page", "pair/1")]
        print(f"\n| what ({args.copies:,} notices) | HTML, cold | HTML + thumbnails, cold | HTML, warm |"
              " HTML + thumbnails, warm | thumbnails |")
        print("|---|---|---|---|---|---|")
        for what, path in cases:
            cold_html, cold_all, count = open_page(base, path)
            warm = [open_page(base, path) for _ in range(args.rounds)]
            html = statistics.median(w[0] for w in warm)
            whole = statistics.median(w[1] for w in warm)
            print(f"| {what} | {cold_html * 1000:.0f} ms | {cold_all * 1000:.0f} ms | {html * 1000:.1f} ms |"
                  f" {whole * 1000:.0f} ms | {count} |")
            if not path:
                summary(f"review list of {args.copies:,} notices, first page: HTML / with thumbnails (warm)",
                        f"{html * 1000:.1f} ms / {whole * 1000:.0f} ms (cold {cold_all * 1000:.0f} ms)")
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
