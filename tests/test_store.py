"""The SQLite store: schema versions, and what it refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dupwatch.errors import DupwatchError
from dupwatch.store.migrations import MIGRATIONS
from dupwatch.store.sqlite import PAGE_BYTES, SqliteStore
from tests.conftest import BEFORE_SCHEMA_6


def test_new_cache_gets_the_latest_schema_in_wal_mode(cache: Path) -> None:
    SqliteStore(cache).close()
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"files", "hashes", "grids", "pairs"} <= tables


def test_reopening_migrates_nothing_twice(cache: Path) -> None:
    SqliteStore(cache).close()
    store = SqliteStore(cache)
    assert store.count() == 0
    store.close()


def test_newer_schema_is_refused(cache: Path) -> None:
    SqliteStore(cache).close()
    with sqlite3.connect(cache) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(DupwatchError, match="newer than this dupwatch"):
        SqliteStore(cache)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    path.write_text("not sqlite at all" * 100)
    with pytest.raises(DupwatchError, match=f"cannot open cache {path}"):
        SqliteStore(path)


def test_a_cache_from_before_canvas_turns_keeps_its_files_and_notices(photos: Path, cache: Path) -> None:
    import shutil

    from tests.conftest import run

    shutil.copy(photos / "coffee.png", photos / "zz coffee copy.png")
    run("scan", photos, "--cache", cache)
    with sqlite3.connect(cache) as db:  # as the release before made it: schema 3
        db.executescript(BEFORE_SCHEMA_6 + "; DROP TABLE troubles; ALTER TABLE files DROP COLUMN turned;"
                         " ALTER TABLE notices DROP COLUMN turned;"
                         " PRAGMA user_version = 3;")
    store = SqliteStore(cache)
    try:
        [notice] = store.notices(0, 10)
        assert notice.match.turned is None and notice.match.path.endswith("zz coffee copy.png")
        assert store.count() == 9 and store.turned(1) == 0.0
    finally:
        store.close()
    rescan = run("scan", photos, "--cache", cache, "--json")
    assert rescan.events("summary")[0]["unchanged"] == 9  # nothing read again


def test_a_cache_from_before_the_hash_table_keeps_every_fingerprint(photos: Path, cache: Path) -> None:
    """Schema 6 moves the hashes into a table of their own and the pixel grids into one that keeps
    them inline; a cache from before keeps every fingerprint, and nothing is read again."""
    from tests.conftest import run

    run("scan", photos, "--cache", cache)
    store = SqliteStore(cache)
    before = {key: store.fingerprints(key) for key in ("chash/1", "cosine/1")}
    store.close()
    with sqlite3.connect(cache) as db:
        db.executescript(BEFORE_SCHEMA_6 + "; PRAGMA user_version = 5;")
    store = SqliteStore(cache)
    try:
        for key, (ids, blobs) in before.items():
            again = store.fingerprints(key)
            assert again[0].tolist() == ids.tolist() and again[1] == blobs and len(blobs) == 8
        assert store.fingerprint(1, "cosine/1") == before["cosine/1"][1][0]
    finally:
        store.close()
    with sqlite3.connect(cache) as db:
        sizes = dict(db.execute("SELECT 'hashes', max(length(data)) FROM hashes"
                                " UNION ALL SELECT 'grids', min(length(data)) FROM grids").fetchall())
    assert sizes == {"hashes": 8, "grids": 1024}
    assert run("scan", photos, "--cache", cache, "--json").events("summary")[0]["unchanged"] == 8


def test_a_new_cache_has_pages_a_pixel_grid_fits_many_times(cache: Path) -> None:
    SqliteStore(cache).close()
    with sqlite3.connect(cache) as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == PAGE_BYTES
