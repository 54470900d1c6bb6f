"""The Hamming index against a brute-force answer on random hashes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dupwatch.index.hamming import HammingIndex


def _popcount(x: int) -> int:
    return bin(x).count("1")


def test_search_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 2**63, size=5000, dtype=np.uint64) * np.uint64(2)
    ids = np.arange(100, 5100, dtype=np.int64)
    index = HammingIndex.of(ids, values)
    query = int(values[17]) ^ 0b1011  # 3 bits away from row 17
    for limit in (0, 3, 20, 30):
        found, distances = index.search(query, limit)
        expected = sorted((_popcount(int(v) ^ query), int(i)) for i, v in zip(ids, values, strict=True)
                          if _popcount(int(v) ^ query) <= limit)
        assert sorted(zip(distances.tolist(), found.tolist(), strict=True)) == expected
        assert list(distances) == sorted(distances)
    assert 117 in index.search(query, 3)[0]


def test_add_remove_and_grow() -> None:
    index = HammingIndex(capacity=2)
    for n in range(10):
        index.add(n, n)
    assert len(index) == 10
    index.remove(0)
    found, _ = index.search(0, 0)
    assert found.tolist() == []  # 0 was the only exact match, and it is gone
    index.add(5, 0)  # a re-indexed file replaces its hash
    assert index.search(0, 0)[0].tolist() == [5]
    assert len(index) == 9


def test_search_with_a_limit_is_the_first_of_the_whole_answer() -> None:
    """Many hashes at each distance: the nearest `limit` come in the same order as the first
    `limit` of the whole answer (ties in the order the files were added), tombstones left out."""
    rng = np.random.default_rng(11)
    values = rng.integers(0, 256, size=3000, dtype=np.uint64)  # 8 bits: distances tie in crowds
    index = HammingIndex.of(np.arange(1, 3001, dtype=np.int64), values)
    for gone in (5, 17, 600, 2999):
        index.remove(gone)
    index.add(5000, 3)
    for query, max_distance in ((0, 64), (7, 3), (255, 8), (1 << 40, 64)):
        ids, distances = index.search(query, max_distance)
        for limit in (0, 1, 7, 256, 2995, 2996, 5000):
            found, near = index.search(query, max_distance, limit)
            assert found.tolist() == ids[:limit].tolist()
            assert near.tolist() == distances[:limit].tolist()
    assert 5 not in index.search(0, 64, 5000)[0].tolist()


def test_saved_index_loads_back_only_with_its_stamp(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    values = rng.integers(0, 2**63, size=500, dtype=np.uint64)
    index = HammingIndex.of(np.arange(10, 510, dtype=np.int64), values)
    index.remove(12)
    saved = tmp_path / "index"
    index.save(saved, b"stamp-1")
    loaded = HammingIndex.load(saved, b"stamp-1")
    assert loaded is not None and len(loaded) == 499
    assert loaded.value(12) is None and loaded.value(11) == int(values[1])
    probe = int(values[40])
    assert loaded.search(probe, 64, 20)[0].tolist() == index.search(probe, 64, 20)[0].tolist()
    assert HammingIndex.saved_with(saved, b"stamp-1") and not HammingIndex.saved_with(saved, b"stamp-2")
    assert HammingIndex.load(saved, b"stamp-2") is None  # the store's hashes changed since
    assert HammingIndex.load(tmp_path / "none", b"stamp-1") is None
    whole = saved.read_bytes()
    for cut in (8, 16 * 499, 16 * 499 + 4):  # cut short: in the rows, at them, in their count
        saved.write_bytes(whole[:-cut])
        assert HammingIndex.load(saved, b"stamp-1") is None
    assert list(tmp_path.iterdir()) == [saved]  # no part file left behind


def test_an_index_that_cannot_be_saved_is_no_error(tmp_path: Path) -> None:
    index = HammingIndex.of(np.arange(3, dtype=np.int64), np.arange(3, dtype=np.uint64))
    index.save(tmp_path / "no-such-folder" / "index", b"s")
    assert not (tmp_path / "no-such-folder").exists()
