"""The Hamming index against a brute-force answer on random hashes."""

from __future__ import annotations

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
