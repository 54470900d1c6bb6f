"""Vector index: build time, k=5 query latency, recall@5 and memory: numpy, codes and usearch.

    python benchmarks/vectors.py [--rows 100000] [--queries 200] [--data both] [--only numpy,codes,usearch]

Rows are random unit vectors of 1280 float16 values, of two kinds: `embedding` (non-negative and
of low intrinsic dimension, like pooled CNN features) and `isotropic` (Gaussian, normalised: a
graph index's worst case, since no point has neighbours much nearer than the rest). Queries are
fresh vectors of the same kind (recall@5: the share of numpy's exact top 5 that usearch returns)
and indexed rows with noise added, cosine about 0.95 to their source (dup@1: the share whose
source comes first). For usearch, also what a restart costs with the graph saved at the last stop.
For codes, the full vectors of the nearest codes are read from memory here; what reading them from
a SQLite cache costs (by id, one statement, as robust mode does) is measured apart, on a cache of
up to 50,000 embeddings (a read by id costs about the same at any size).
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from benchmarks.common import summary
from dupwatch.index.vectors import CodedVectors, NumpyVectors, UsearchVectors, VectorIndex
from dupwatch.record import FileStat, Photo
from dupwatch.store.sqlite import SqliteStore

DIM = 1280
K = 5


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmRSS in /proc/self/status")


def unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True), dtype=np.float32)


def draw(rng: np.random.Generator, n: int, data: str) -> np.ndarray:
    """n unit vectors as float16, made 10,000 at a time so that float32 never holds them all."""
    basis = np.random.default_rng(99).standard_normal((32, DIM), dtype=np.float32)
    out = np.empty((n, DIM), dtype=np.float16)
    for start in range(0, n, 10_000):
        m = min(10_000, n - start)
        if data == "embedding":
            block = np.maximum(rng.standard_normal((m, 32), dtype=np.float32) @ basis, 0)
        else:
            block = rng.standard_normal((m, DIM), dtype=np.float32)
        out[start:start + m] = unit(block)
    return out


Kind = type[NumpyVectors] | type[UsearchVectors] | type[CodedVectors]


def measure(name: str, build: Kind, ids: np.ndarray, rows: np.ndarray,
            queries: np.ndarray, headline: bool) -> tuple[VectorIndex, list[np.ndarray]]:
    gc.collect()
    before = rss_mib()
    started = time.perf_counter()
    index = build.of(ids, rows)
    built = time.perf_counter() - started
    grown = rss_mib() - before
    index.search(queries[0], K)  # the first query pays for one-off set-up; leave it out
    answers, times = [], []
    for q in queries:
        t = time.perf_counter()
        found, _ = index.search(q, K)
        times.append(time.perf_counter() - t)
        answers.append(found)
    ms = np.array(times) * 1000
    print(f"  {name:8} built in {built:6.2f} s, RSS +{grown:5.0f} MiB; query k={K}: mean {ms.mean():6.2f} ms,"
          f" p50 {np.percentile(ms, 50):6.2f} ms, p99 {np.percentile(ms, 99):6.2f} ms", flush=True)
    if headline:
        summary(f"nearest {K} of {len(rows):,} embeddings, {name}",
                f"mean {ms.mean():.1f} ms a query; built in {built:.1f} s", f"+{grown:.0f} MiB for the index")
    return index, answers


def restart(index: UsearchVectors, ids: np.ndarray, rows: np.ndarray, rng: np.random.Generator,
            headline: bool) -> None:
    """What a service start costs with the graph saved at the last stop: read it back and bring
    it up to date with a store in which 1 % of the files changed since (half new, half edited)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vectors.usearch"
        started = time.perf_counter()
        index.save(path)
        saved = time.perf_counter() - started
        size = path.stat().st_size / 2**20
        changed = max(2, len(ids) // 100)
        now_ids = np.concatenate([ids, ids.max() + 1 + np.arange(changed // 2)])
        now_rows = np.concatenate([rows, rows[rng.choice(len(rows), changed // 2)]])
        edited = rng.choice(len(ids), changed // 2, replace=False)
        now_rows[edited] = rows[rng.choice(len(rows), len(edited))]
        gc.collect()
        started = time.perf_counter()
        restored = UsearchVectors.restore(path, now_ids, now_rows)
        took = time.perf_counter() - started
    assert restored is not None and len(restored) == len(now_ids)
    print(f"  usearch  saved in {saved:.2f} s ({size:.0f} MiB); read back and {changed:,} rows brought up"
          f" to date in {took:.2f} s", flush=True)
    if headline:
        summary(f"start with the saved graph of {len(ids):,}", f"{took:.1f} s (1 % changed)",
                f"{size:.0f} MiB file")


def store_reads(rows: np.ndarray, rng: np.random.Generator, headline: bool) -> None:
    """Reading `CodedVectors.RERANK` embeddings by id from a SQLite cache, in one statement."""
    n = min(len(rows), 50_000)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "cache.db")
        for i in range(n):
            store.put(Photo(f"/p/{i}.jpg", FileStat(1, 1, 1, i), i.to_bytes(32, "little"), 1, 1,
                            {"cnn/bench": rows[i].tobytes()}), "bench")
            store.file_done()
        store.commit()
        times = []
        for _ in range(50):
            wanted = (rng.choice(n, CodedVectors.RERANK, replace=False) + 1).tolist()
            t = time.perf_counter()
            found = store.fingerprints_of(wanted, "cnn/bench")
            times.append(time.perf_counter() - t)
            assert len(found) == len(wanted)
        store.close()
    ms = np.array(times) * 1000
    print(f"  codes    reading the {CodedVectors.RERANK} vectors to score from a SQLite cache of {n:,}:"
          f" mean {ms.mean():.2f} ms, p99 {np.percentile(ms, 99):.2f} ms", flush=True)
    if headline:
        summary(f"codes: {CodedVectors.RERANK} embeddings read back from SQLite by id",
                f"mean {ms.mean():.1f} ms a search")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--data", choices=("embedding", "isotropic", "both"), default="both")
    parser.add_argument("--only", default="numpy,codes,usearch",
                        help="the indexes to build, comma-separated (recall@5 needs numpy)")
    args = parser.parse_args()
    known: dict[str, Kind] = {"numpy": NumpyVectors, "codes": CodedVectors, "usearch": UsearchVectors}
    kinds = [(name, known[name]) for name in args.only.split(",")]
    for data in ("embedding", "isotropic") if args.data == "both" else (args.data,):
        rng = np.random.default_rng(0)
        rows = draw(rng, args.rows, data)
        ids = np.arange(1, args.rows + 1, dtype=np.int64)
        fresh = draw(rng, args.queries, data).astype(np.float32)
        sources = rng.choice(args.rows, size=args.queries, replace=False)
        noisy = rows[sources].astype(np.float32)
        noisy = unit(noisy + rng.standard_normal(noisy.shape, dtype=np.float32) * 0.33 / np.sqrt(DIM))
        cosine = float(np.mean(np.sum(noisy * rows[sources].astype(np.float32), axis=1)))
        print(f"{args.rows:,} {data} vectors of {DIM} float16; {args.queries} fresh queries and"
              f" {args.queries} noisy copies (mean cosine {cosine:.3f} to their source)", flush=True)
        answers: dict[str, list[np.ndarray]] = {}
        for name, build in kinds:
            index, answers[name] = measure(name, build, ids, rows, fresh, headline=data == "embedding")
            dup = np.mean([index.search(q, 1)[0].tolist() == [ids[s]]
                           for q, s in zip(noisy, sources, strict=True)])
            print(f"  {name:8} dup@1 {dup:.3f}", flush=True)
            if isinstance(index, UsearchVectors):
                restart(index, ids, rows, rng, headline=data == "embedding")
            if isinstance(index, CodedVectors):
                store_reads(rows, rng, headline=data == "embedding")
            del index
        for name in answers.keys() - {"numpy"} if "numpy" in answers else ():
            hits = sum(len(set(a.tolist()) & set(b.tolist()))
                       for a, b in zip(answers[name], answers["numpy"], strict=True))
            print(f"  {name} recall@{K} against numpy: {hits / (K * args.queries):.3f}", flush=True)
            if data == "embedding":
                summary(f"{name}: recall@{K} of {len(rows):,} embeddings", f"{hits / (K * args.queries):.3f}")
        del rows
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
