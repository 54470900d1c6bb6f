"""The vector indexes against a brute-force answer on random unit vectors, and their bookkeeping."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dupwatch.index import vectors
from dupwatch.index.vectors import NumpyVectors, VectorIndex, make_vector_index

DIM = 1280


def _unit(x: np.ndarray) -> np.ndarray:
    return np.asarray(x / np.linalg.norm(x, axis=-1, keepdims=True), dtype=np.float32)


def _isotropic(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    return _unit(rng.standard_normal((n, dim), dtype=np.float32))


def _embedding_like(rng: np.random.Generator, n: int, dim: int = DIM, rank: int = 32) -> np.ndarray:
    """Non-negative and of low intrinsic dimension, like pooled CNN features.

    Isotropic random vectors are a graph index's worst case: every point is about equally far from
    every other, so there are no neighbourhoods to walk. No set of photos embeds like that.
    """
    basis = np.random.default_rng(99).standard_normal((rank, dim), dtype=np.float32)
    return _unit(np.maximum(rng.standard_normal((n, rank), dtype=np.float32) @ basis, 0))


def _brute_force(rows: np.ndarray, ids: np.ndarray, query: np.ndarray,
                 k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = rows.astype(np.float16).astype(np.float32) @ query.astype(np.float32)
    order = np.argsort(-scores, kind="stable")[:k]
    return ids[order], scores[order]


def _numpy(dim: int) -> VectorIndex:
    return NumpyVectors(dim, capacity=2)  # tiny, so that adding grows it


def _usearch(dim: int) -> VectorIndex:
    pytest.importorskip("usearch")
    return vectors.UsearchVectors(dim)


class _Stored(vectors.CodedVectors):
    """Codes whose full vectors are kept in a dict, as a store keeps them beside the index."""

    def __init__(self, dim: int) -> None:
        self.stored: dict[int, np.ndarray] = {}
        super().__init__(dim, self._read, capacity=2)  # tiny, so that adding grows it

    def _read(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        found = [i for i in ids.tolist() if i in self.stored]
        rows = [self.stored[i] for i in found] or [np.zeros(self.dim)]
        return np.array(found, dtype=np.int64), np.array(rows, dtype=np.float16)[: len(found)]

    def add(self, file_id: int, vector: np.ndarray) -> None:
        super().add(file_id, vector)
        self.stored[file_id] = vector

    def remove(self, file_id: int) -> None:
        super().remove(file_id)
        self.stored.pop(file_id, None)


KINDS: list[Callable[[int], VectorIndex]] = [_numpy, _usearch, _Stored]


def test_numpy_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    rows = _isotropic(rng, 3000).astype(np.float16)
    ids = np.arange(500, 3500, dtype=np.int64)
    index = NumpyVectors.of(ids, rows)
    assert len(index) == 3000
    for query in _isotropic(rng, 5):
        for k in (1, 5, 50):
            found, scores = index.search(query, k)
            expected_ids, expected_scores = _brute_force(rows, ids, query, k)
            assert found.dtype == np.int64 and scores.dtype == np.float32
            assert found.tolist() == expected_ids.tolist()
            np.testing.assert_allclose(scores, expected_scores, rtol=0, atol=1e-6)


def test_numpy_converts_every_kind_of_half_exactly() -> None:
    # The scan widens float16 by bit shifting; it must agree with numpy's cast on zeros of
    # both signs, subnormal halves, the smallest and largest normal ones, and negatives.
    specials = np.array([0.0, -0.0, 6e-8, -6e-8, 3e-5, -4e-5, 2.0**-14, -(2.0**-14), 0.5, -1.0, 65504.0,
                         -65504.0], dtype=np.float16)
    rng = np.random.default_rng(5)
    rows = rng.choice(specials, size=(300, 64)).astype(np.float16)
    rows[:100] = _isotropic(rng, 100, 64)
    index = NumpyVectors.of(np.arange(300, dtype=np.int64), rows)
    query = _isotropic(rng, 1, 64)[0] * np.float32(1e-3)  # small enough that no product overflows
    found, scores = index.search(query, 300)
    expected = rows.astype(np.float32) @ query
    np.testing.assert_allclose(scores, expected[found], rtol=1e-6, atol=0)
    assert sorted(found.tolist()) == list(range(300))


def test_usearch_recall_and_a_planted_near_duplicate() -> None:
    pytest.importorskip("usearch")
    rng = np.random.default_rng(11)
    rows = _embedding_like(rng, 20_000).astype(np.float16)
    ids = np.arange(1, 20_001, dtype=np.int64)
    original = _embedding_like(rng, 1)[0]
    copy = _unit(original + 0.005 * rng.standard_normal(DIM, dtype=np.float32))  # cosine ≈ 0.98
    exact = NumpyVectors.of(ids, rows)
    approx = vectors.UsearchVectors.of(ids, rows)
    exact.add(99_999, copy)
    approx.add(99_999, copy)
    assert len(approx) == 20_001

    found, scores = approx.search(original, 5)
    assert found[0] == 99_999 and scores[0] > 0.95
    assert list(scores) == sorted(scores, reverse=True)

    queries = _embedding_like(rng, 100)
    hits = sum(len(set(approx.search(q, 5)[0].tolist()) & set(exact.search(q, 5)[0].tolist()))
               for q in queries)
    assert hits / (5 * len(queries)) >= 0.95


@pytest.mark.parametrize("make", KINDS, ids=["numpy", "usearch", "codes"])
def test_add_replace_remove(make: Callable[[int], VectorIndex]) -> None:
    rng = np.random.default_rng(17)
    rows = _isotropic(rng, 40, 32)
    index = make(32)
    for file_id, row in enumerate(rows):
        index.add(file_id, row)
    assert len(index) == 40
    assert index.search(rows[7], 1)[0].tolist() == [7]

    index.add(7, rows[30])  # a re-indexed file replaces its vector
    assert len(index) == 40
    found, scores = index.search(rows[30], 2)
    assert sorted(found.tolist()) == [7, 30]
    np.testing.assert_allclose(scores, [1.0, 1.0], atol=1e-3)
    assert 7 not in index.search(rows[7], 5)[0].tolist()

    index.remove(30)
    index.remove(30)  # twice, and an id never added, are no-ops
    index.remove(12345)
    assert len(index) == 39
    found, _ = index.search(rows[30], 40)
    assert found[0] == 7 and 30 not in found.tolist()
    assert len(found) == 39


@pytest.mark.parametrize("make", KINDS, ids=["numpy", "usearch", "codes"])
def test_empty_index_and_k_past_the_end(make: Callable[[int], VectorIndex]) -> None:
    rng = np.random.default_rng(23)
    index = make(16)
    query = _isotropic(rng, 1, 16)[0]
    found, scores = index.search(query, 5)
    assert found.dtype == np.int64 and scores.dtype == np.float32
    assert len(found) == len(scores) == 0

    rows = _isotropic(rng, 3, 16)
    for file_id, row in zip((10, 20, 30), rows, strict=True):
        index.add(file_id, row)
    found, scores = index.search(query, 10)
    assert sorted(found.tolist()) == [10, 20, 30]
    assert list(scores) == sorted(scores, reverse=True)
    assert len(index.search(query, 0)[0]) == 0

    for file_id in (10, 20, 30):
        index.remove(file_id)
    assert len(index) == 0
    assert len(index.search(query, 5)[0]) == 0


def test_bulk_build_of_no_rows() -> None:
    empty = NumpyVectors.of(np.empty(0, dtype=np.int64), np.empty((0, 8), dtype=np.float16))
    assert len(empty) == 0
    assert len(empty.search(np.ones(8, dtype=np.float32), 3)[0]) == 0


def test_numpy_drops_tombstones_and_keeps_answering() -> None:
    rng = np.random.default_rng(29)
    rows = _isotropic(rng, 5000, 24)
    ids = np.arange(5000, dtype=np.int64)
    index = NumpyVectors.of(ids, rows.astype(np.float16))
    for file_id in range(0, 5000, 4):
        index.remove(file_id)  # ends past the point where dead rows outnumber live ones
    for file_id in range(1, 5000, 4):
        index.remove(file_id)
    kept = ids % 4 >= 2
    for query in _isotropic(rng, 3, 24):
        found, scores = index.search(query, 20)
        expected_ids, expected_scores = _brute_force(rows[kept], ids[kept], query, 20)
        assert found.tolist() == expected_ids.tolist()
        np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    assert len(index) == 2500
    index.add(1, rows[1])  # a removed id may come back
    assert index.search(rows[1], 1)[0].tolist() == [1]


def test_bad_vectors_are_refused() -> None:
    index = NumpyVectors(4)
    with pytest.raises(ValueError, match="4 values"):
        index.add(1, np.ones(5, dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        index.add(1, np.array([1.0, np.nan, 0.0, 0.0], dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        NumpyVectors.of(np.arange(2, dtype=np.int64), np.array([[1, 0, 0, 0], [np.inf, 0, 0, 0]], np.float16))
    with pytest.raises(ValueError, match=">= 0"):
        index.add(-1, np.ones(4, dtype=np.float32))  # -1 marks a removed row
    assert len(index) == 0


def test_usearch_refuses_negative_ids() -> None:
    pytest.importorskip("usearch")
    with pytest.raises(ValueError, match=">= 0"):
        vectors.UsearchVectors(4).add(-3, np.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match=">= 0"):
        vectors.UsearchVectors.of(np.array([1, -2]), np.ones((2, 4), dtype=np.float16))


def test_make_vector_index_picks_by_size() -> None:
    fetch = _Stored(8)._read
    assert isinstance(make_vector_index("auto", 8, vectors.NUMPY_MAX_ROWS, fetch), NumpyVectors)
    assert isinstance(make_vector_index("numpy", 8, 10 * vectors.NUMPY_MAX_ROWS, fetch), NumpyVectors)
    assert isinstance(make_vector_index("auto", 8, vectors.NUMPY_MAX_ROWS + 1, fetch), vectors.CodedVectors)
    assert isinstance(make_vector_index("codes", 8, 10, fetch), vectors.CodedVectors)
    with pytest.raises(ValueError, match="read the full vectors"):
        make_vector_index("codes", 8, 10)
    pytest.importorskip("usearch")
    assert isinstance(make_vector_index("usearch", 8, 10), vectors.UsearchVectors)


def test_codes_find_the_exact_nearest_of_a_library() -> None:
    """Over 20,000 embedding-like vectors, the codes' search returns (nearly always) the exact
    top 5, with the exact scores, and each noisy copy's source first."""
    rng = np.random.default_rng(5)
    rows = _embedding_like(rng, 20_000).astype(np.float16)
    ids = np.arange(100, 20_100, dtype=np.int64)
    index = vectors.CodedVectors.of(ids, rows)
    assert len(index) == 20_000
    hits = 0
    for query in _embedding_like(rng, 40):
        found, scores = index.search(query, 5)
        expected_ids, _ = _brute_force(rows, ids, query, 5)
        hits += len(set(found.tolist()) & set(expected_ids.tolist()))
        truth = dict(zip(*_brute_force(rows, ids, query, len(ids)), strict=True))
        np.testing.assert_allclose(scores, [truth[i] for i in found.tolist()], atol=1e-5)
    assert hits / (5 * 40) >= 0.99
    sources = rng.integers(0, len(rows), 20)
    noisy = _unit(rows[sources].astype(np.float32) + 0.01 * rng.standard_normal((20, DIM)))
    assert all(index.search(q, 1)[0][0] == ids[s] for q, s in zip(noisy, sources, strict=True))
    # Each code is 64 bytes: a million of them fit in 64 MiB.
    assert index._codes[:, :1].nbytes == 64


def test_importing_the_module_does_not_import_usearch() -> None:
    code = "import sys, dupwatch.index.vectors; print('usearch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_saved_graph_is_brought_up_to_date_with_the_store(tmp_path: Path) -> None:
    pytest.importorskip("usearch")
    rng = np.random.default_rng(23)
    rows = _embedding_like(rng, 2_000).astype(np.float16)
    ids = np.arange(1, 2_001, dtype=np.int64)
    built = vectors.UsearchVectors.of(ids, rows)
    saved = tmp_path / "index.sqlite3.vectors.usearch"
    built.save(saved)
    assert saved.exists() and not built.changed

    # Since then: file 5 gone, file 9's content changed (same id), file 5000 new.
    changed = _embedding_like(rng, 2).astype(np.float16)
    now_ids = np.concatenate([ids[ids != 5], [5000]])
    now_rows = np.concatenate([rows[ids != 5], changed[1:]])
    now_rows[now_ids == 9] = changed[0]
    restored = vectors.UsearchVectors.restore(saved, now_ids, now_rows)
    assert restored is not None and restored.changed and len(restored) == 2_000
    assert restored.search(changed[0].astype(np.float32), 1)[0].tolist() == [9]
    assert restored.search(changed[1].astype(np.float32), 1)[0].tolist() == [5000]
    assert 5 not in restored.search(rows[4].astype(np.float32), 10)[0].tolist()
    assert 9 not in restored.search(rows[8].astype(np.float32), 3)[0].tolist()  # the old content
    for probe in (10, 700, 1999):
        assert restored.search(rows[probe - 1].astype(np.float32), 1)[0].tolist() == [probe]

    # Unchanged: nothing to bring up to date, nothing to save.
    same = vectors.UsearchVectors.restore(saved, ids, rows)
    assert same is not None and not same.changed
    # Mostly different (another model's embeddings, say): built afresh instead.
    assert vectors.UsearchVectors.restore(saved, ids, _embedding_like(rng, 2_000).astype(np.float16)) is None
    # Another length of vector: built afresh.
    assert vectors.UsearchVectors.restore(saved, ids[:3], rows[:3, :64]) is None


def test_an_unreadable_saved_graph_is_built_afresh_and_says_so(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("usearch")
    saved = tmp_path / "index.sqlite3.vectors.usearch"
    saved.write_bytes(b"not a graph" * 100)
    rows = _isotropic(np.random.default_rng(3), 10, 32).astype(np.float16)
    with caplog.at_level(logging.WARNING, logger="dupwatch"):
        assert vectors.UsearchVectors.restore(saved, np.arange(10), rows) is None
    assert any(str(saved) in r.getMessage() for r in caplog.records)


def test_a_streamed_search_reads_every_page_and_keeps_the_exact_nearest() -> None:
    rng = np.random.default_rng(31)
    rows = _embedding_like(rng, 2500, 64).astype(np.float16)
    ids = np.arange(7, 2507, dtype=np.int64)
    pages = [(ids[s:s + 1000], rows[s:s + 1000]) for s in range(0, 2500, 1000)]
    index = vectors.StreamedVectors(64, lambda: iter(pages))
    assert len(index) == 2500
    for query in _embedding_like(rng, 5, 64):
        found, scores = index.search(query, 5)
        expected_ids, expected_scores = _brute_force(rows, ids, query, 5)
        assert found.tolist() == expected_ids.tolist()
        np.testing.assert_allclose(scores, expected_scores, atol=1e-6)
    with pytest.raises(TypeError, match="read-only"):
        index.add(1, rows[0])


def test_codes_are_kept_beside_the_cache_and_brought_up_to_date(tmp_path: Path) -> None:
    """Robust mode's codes at a million photos took half a minute to make at every start, from
    every embedding in the cache. They are saved at the stop; the next start reads them and
    codes again only the files any writer changed since, from the cache's change log."""
    from dupwatch.candidates.neighbours import NeighbourSearch
    from dupwatch.methods.cnn import CnnMethod
    from dupwatch.methods.registry import get_method
    from dupwatch.record import FileStat, Photo
    from dupwatch.store.sqlite import SqliteStore

    cnn = get_method("cnn")
    assert isinstance(cnn, CnnMethod)
    rows = _embedding_like(np.random.default_rng(5), 302, cnn.shape[0])
    cache = tmp_path / "index.db"

    def put(store: SqliteStore, n: int) -> None:
        # As every indexed photo has, a hash beside its embedding (a file's forgetting is logged
        # through it).
        prints = {"chash/1": n.to_bytes(8, "big"), cnn.key: rows[n].astype(np.float16).tobytes()}
        store.put(Photo(f"/photos/{n}.jpg", FileStat(1000 + n, n, 1, n), n.to_bytes(32, "big"), 64, 48,
                        prints), "chash cnn")
        store.file_done()

    def search(store: SqliteStore) -> NeighbourSearch:
        return NeighbourSearch(store, cnn, 0.8, 1, "codes", lambda photo, file_id: 0)

    def nearest(found: NeighbourSearch, n: int) -> int:
        ids, _ = found.index.search(rows[n], 1)
        return int(ids[0])

    store = SqliteStore(cache)
    for n in range(300):
        put(store, n)
    first = search(store)
    first.close()
    saved = store.beside("vectors.codes")
    assert saved is not None and saved.exists()
    ids = {n: store.get(f"/photos/{n}.jpg").id for n in range(300)}  # type: ignore[union-attr]

    # While no watcher runs, another process indexes a photo and forgets one.
    other = SqliteStore(cache)
    put(other, 300)
    other.remove("/photos/7.jpg")
    other.commit()
    other.close()

    again = search(store)
    assert isinstance(again.index, vectors.CodedVectors)
    assert len(again.index) == 300  # read back (300), one more and one fewer since
    assert nearest(again, 300) == store.get("/photos/300.jpg").id  # type: ignore[union-attr]
    assert nearest(again, 7) != ids[7]
    assert nearest(again, 12) == ids[12]
    # This process's own photo, then saved at its stop with the log's position: read back as is.
    put(store, 301)
    again.add(store.get("/photos/301.jpg").id, {cnn.key: rows[301].astype(np.float16).tobytes()})  # type: ignore[union-attr]
    again.close()
    third = search(store)
    assert len(third.index) == 301 and nearest(third, 301) == store.get("/photos/301.jpg").id  # type: ignore[union-attr]

    # Codes saved beside another cache (or before a log pruned past them) are made again.
    saved.write_bytes(saved.read_bytes().replace(store.log_position()[:-8], b"\0" * 16))  # type: ignore[index]
    fresh = search(store)
    assert len(fresh.index) == 301 and nearest(fresh, 12) == ids[12]
    store.close()
