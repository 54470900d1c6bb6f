"""The embedded store: one SQLite file in WAL mode, written by one connection in batches.

WAL with synchronous=NORMAL survives a kill -9 of dupwatch: a killed run loses at most the batch
it had not committed, never the database. Another process (a second `scan`, the daemon) waits
for the lock instead of failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np

from dupwatch.errors import DupwatchError
from dupwatch.record import Header, Match, Notice, Photo
from dupwatch.store import names
from dupwatch.store.base import (
    FileView,
    Group,
    Hashes,
    Known,
    Member,
    Reviewed,
    ReviewFilter,
    Trouble,
    joined,
)
from dupwatch.store.migrations import MIGRATIONS
from dupwatch.store.sql import review_where

log = logging.getLogger("dupwatch")

BATCH_FILES = 256
# Rows of the change log kept (schema 9): a follower further behind than that (which calls
# `changed_elsewhere` before every match) has been stopped, and reads the catalog when it starts.
KEEP_CHANGES = 1_000_000
# Fingerprints this small (a 64-bit hash) are kept apart from the large ones (migration 6).
HASH_BYTES = 16
# A new cache's page size: a 1 KB pixel grid and its row fit a 16 KB page fifteen times over,
# a 4 KB page only three times.
PAGE_BYTES = 16384
BATCH_SECONDS = 1.0
PAGE_ROWS = 10_000  # fingerprints read at a time by `fingerprint_pages`


class NamedConnection:
    """A connection through which any file name goes in and comes back as it was (`names.py`):
    every str parameter is mapped by `names.to_store`, every TEXT value read by
    `names.text_factory`. Identity for UTF-8 text, so the other columns (methods, kinds, JSON)
    pass unchanged."""

    def __init__(self, db: sqlite3.Connection) -> None:
        db.text_factory = names.text_factory
        self.raw = db

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.raw.execute(sql, _bound(parameters))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> sqlite3.Cursor:
        return self.raw.executemany(sql, (_bound(row) for row in rows))

    def executescript(self, script: str) -> sqlite3.Cursor:
        return self.raw.executescript(script)

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    def close(self) -> None:
        self.raw.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)  # the rest of the connection's API, as it is


def _bound(parameters: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(names.to_store(p) if isinstance(p, str) else p for p in parameters)


class SqliteStore:
    # Whatever opens the connection assigns `self._db`; it is wrapped here, so that no query,
    # present or future, binds or reads a file name any other way.
    @property
    def _db(self) -> NamedConnection:
        return self._named

    @_db.setter
    def _db(self, db: sqlite3.Connection) -> None:
        self._named = NamedConnection(db)

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DupwatchError(f"cannot open cache {path}: cannot make its folder {path.parent}:"
                                f" {exc.strerror or exc}; use another --cache (or cache.path)") from None
        try:
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            self._db.execute(f"PRAGMA page_size={PAGE_BYTES}")  # a new, empty file only; else ignored
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise cache_error(path, exc, opening=True) from None
        self._pending = 0
        self._batch_started = 0.0
        self._delivery: int | None = None  # the notices lock's descriptor, while this delivers
        self._closed = False
        self._seen: int | None = None  # the last change log row read, once `listen` was called

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise DupwatchError(
                f"cache {self.path} has schema {version}, newer than this dupwatch knows "
                f"({len(MIGRATIONS)}); upgrade dupwatch or use another --cache"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript commits first, so BEGIN/COMMIT go inside the script itself.
            self._db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")

    # Writes are grouped: a transaction opens on the first write and commits every
    # BATCH_FILES files or BATCH_SECONDS, whichever comes first, and at close.
    def _write(self) -> None:
        if not self._db.in_transaction:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?",
                             (KEEP_CHANGES,))
            self._batch_started = time.monotonic()
            self._pending = 0

    def _wrote_file(self) -> None:
        self._pending += 1
        if self._pending >= BATCH_FILES or time.monotonic() - self._batch_started >= BATCH_SECONDS:
            self.commit()

    def file_done(self) -> None:
        """Everything about one file is written: commit if the batch is due. Called after a
        file *and* its pair are in, so that no commit (and no kill) ever falls between them."""
        self._wrote_file()

    def commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Commit and let go (of the delivering role too); closing twice is closing once."""
        if self._closed:
            return
        self._closed = True
        self.commit()
        self._db.close()
        if self._delivery is not None:
            os.close(self._delivery)  # releases the lock
            self._delivery = None

    def take_delivery(self) -> str | None:
        # flock: the kernel lets go of it when the process dies, however it dies.
        lock = self.path.with_name(self.path.name + ".notices.lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise DupwatchError(f"cannot open {lock}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            return f"dupwatch process {holder} delivers them (it holds {lock})"
        with contextlib.suppress(OSError):  # who delivers, for the line above: a full disk may refuse it
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._delivery = fd
        return None

    def get(self, path: str) -> Known | None:
        row = self._db.execute(
            "SELECT id, size, mtime_ns, plan FROM files WHERE path = ?", (path,)
        ).fetchone()
        return Known(*row) if row else None

    def path_of(self, file_id: int) -> str | None:
        row = self._db.execute("SELECT path FROM files WHERE id = ?", (file_id,)).fetchone()
        return row[0] if row else None

    def put(self, photo: Photo, plan: str) -> int:
        self._write()
        st = photo.stat
        values = (photo.path, st.size, st.mtime_ns, _signed(st.dev), _signed(st.ino), photo.content_hash,
                  photo.width, photo.height, plan, time.time(), photo.turned, photo.pixels or None)
        row = self._db.execute(
            "SELECT id, content_hash FROM files WHERE path = ?", (photo.path,)
        ).fetchone()
        if row is None:
            cur = self._db.execute(
                "INSERT INTO files (path, size, mtime_ns, dev, ino, content_hash, width, height,"
                " plan, indexed_at, turned, pixels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            file_id = int(cur.lastrowid or 0)
        else:
            file_id = int(row[0])
            self._db.execute(
                "UPDATE files SET path = ?, size = ?, mtime_ns = ?, dev = ?, ino = ?,"
                " content_hash = ?, width = ?, height = ?, plan = ?, indexed_at = ?, turned = ?,"
                " pixels = ?, format = NULL, meta = NULL, taken = NULL WHERE id = ?",
                (*values, file_id),
            )
            self._db.execute("DELETE FROM hashes WHERE file_id = ?", (file_id,))
            self._db.execute("DELETE FROM grids WHERE file_id = ?", (file_id,))
            if bytes(row[1]) != photo.content_hash:
                # New content: what was said about the old content no longer holds. The same
                # bytes touched or fingerprinted anew keep their pairs, so none is told twice.
                self._db.execute("DELETE FROM pairs WHERE file_id = ? OR match_id = ?", (file_id, file_id))
        for key, data in photo.fingerprints.items():
            self._put_fingerprint(file_id, key, data)
        return file_id

    def remove(self, path: str) -> int | None:
        self._write()
        row = self._db.execute("DELETE FROM files WHERE path = ? RETURNING id", (path,)).fetchone()
        self._wrote_file()
        return int(row[0]) if row else None

    def rename(self, old: str, new: str) -> int | None:
        self._write()
        row = self._db.execute("UPDATE files SET path = ? WHERE path = ? RETURNING id", (new, old)).fetchone()
        self._wrote_file()
        return int(row[0]) if row else None

    def trouble(self, path: str) -> Trouble | None:
        row = self._db.execute(
            "SELECT size, mtime_ns, reason FROM troubles WHERE path = ?", (path,)
        ).fetchone()
        return Trouble(*row) if row else None

    def put_trouble(self, path: str, size: int, mtime_ns: int, reason: str) -> None:
        self._write()
        self._db.execute("INSERT OR REPLACE INTO troubles (path, size, mtime_ns, reason, found_at)"
                         " VALUES (?, ?, ?, ?, ?)", (path, size, mtime_ns, reason, time.time()))

    def paths_of_inode(self, dev: int, ino: int) -> list[str]:
        rows = self._db.execute("SELECT path FROM files WHERE dev = ? AND ino = ?",
                                (_signed(dev), _signed(ino))).fetchall()
        return [r[0] for r in rows]

    def paths_under(self, root: str) -> Iterator[str]:
        prefix = root.rstrip("/") + "/"
        # A range on the primary key instead of LIKE, which would treat % and _ in names as wildcards.
        rows = self._db.execute(
            "SELECT path FROM files WHERE path >= ? AND path < ? ORDER BY path",
            (prefix, prefix[:-1] + "0"),  # "0" is the character after "/"
        ).fetchall()
        return (r[0] for r in rows)

    def exact(self, content_hash: bytes, limit: int = 8) -> list[int]:
        rows = self._db.execute(
            "SELECT id FROM files WHERE content_hash = ? ORDER BY id LIMIT ?", (content_hash, limit)
        ).fetchall()
        return [r[0] for r in rows]

    def listen(self) -> None:
        if self._seen is not None:
            return
        # This connection's own changes are told apart by a TEMP trigger, which fires for this
        # connection's statements only, and rolls back with them.
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS mine (seq INTEGER PRIMARY KEY)")
        self._db.execute("CREATE TEMP TRIGGER IF NOT EXISTS mine_logged AFTER INSERT ON main.changes"
                         " BEGIN INSERT INTO mine (seq) VALUES (NEW.seq); END")
        self._seen = self._db.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0]

    def changed_elsewhere(self) -> list[int]:
        if self._seen is None:
            return []
        rows = self._db.execute(
            "SELECT seq, file_id, seq IN (SELECT seq FROM temp.mine) FROM changes WHERE seq > ? ORDER BY seq",
            (self._seen,)).fetchall()
        if not rows:
            return []
        if rows[0][0] > self._seen + 1 and self._seen:
            log.warning("cache %s: %d changes by other processes were dropped from its log before this"
                        " one read them; restart the watcher to see every file", self.path,
                        rows[0][0] - self._seen - 1)
        self._seen = rows[-1][0]
        self._db.execute("DELETE FROM temp.mine WHERE seq <= ?", (self._seen,))
        return [file_id for _, file_id, mine in rows if not mine]

    def log_position(self) -> bytes | None:
        # This cache's own token (schema 8's: a cache made again is another) and its newest change.
        row = self._db.execute("SELECT (SELECT token FROM hash_stamp WHERE id = 1),"
                               " (SELECT coalesce(max(seq), 0) FROM changes)").fetchone()
        return None if row[0] is None else bytes(row[0]) + int(row[1]).to_bytes(8, "big")

    def changes_since(self, position: bytes) -> list[int] | None:
        now = self.log_position()
        if now is None or len(position) != len(now) or position[:-8] != now[:-8]:
            return None
        seq = int.from_bytes(position[-8:], "big")
        first, last = self._db.execute("SELECT min(seq), max(seq) FROM changes").fetchone()
        if last is None:
            return [] if seq == 0 else None
        if seq > last or first > seq + 1:
            return None  # a cache put back from before it, or the log pruned past it
        rows = self._db.execute("SELECT DISTINCT file_id FROM changes WHERE seq > ?", (seq,)).fetchall()
        return [r[0] for r in rows]

    def fingerprints_of(self, file_ids: Sequence[int], key: str) -> dict[int, tuple[str, bytes | None]]:
        rows = self._db.execute(
            "SELECT f.id, f.path, coalesce(h.data, g.data) FROM files f"
            " LEFT JOIN hashes h ON h.method = ? AND h.file_id = f.id"
            " LEFT JOIN grids g ON g.file_id = f.id AND g.method = ?"
            " WHERE f.id IN (SELECT value FROM json_each(?))", (key, key, json.dumps(list(file_ids))))
        return {file_id: (path, None if data is None else bytes(data)) for file_id, path, data in rows}

    def fingerprint(self, file_id: int, key: str) -> bytes | None:
        row = self._db.execute(
            "SELECT data FROM hashes WHERE method = ? AND file_id = ?"
            " UNION ALL SELECT data FROM grids WHERE file_id = ? AND method = ?", (key, file_id, file_id, key)
        ).fetchone()
        return bytes(row[0]) if row else None

    def put_fingerprint(self, file_id: int, key: str, data: bytes) -> None:
        self._write()
        self._put_fingerprint(file_id, key, data)

    def _put_fingerprint(self, file_id: int, key: str, data: bytes) -> None:
        if len(data) <= HASH_BYTES:
            self._db.execute("INSERT OR REPLACE INTO hashes (method, file_id, data) VALUES (?, ?, ?)",
                             (key, file_id, data))
        else:
            self._db.execute("INSERT OR REPLACE INTO grids (file_id, method, data) VALUES (?, ?, ?)",
                             (file_id, key, data))

    def fingerprints(self, key: str) -> tuple[np.ndarray, list[bytes]]:
        return joined(self.fingerprint_pages(key))

    def fingerprint_pages(self, key: str, rows: int = PAGE_ROWS) -> Iterator[tuple[np.ndarray, list[bytes]]]:
        after = -1
        while True:
            page = self._db.execute(
                "SELECT file_id, data FROM hashes WHERE method = ? AND file_id > ?"
                " UNION ALL SELECT file_id, data FROM grids WHERE method = ? AND file_id > ?"
                " ORDER BY file_id LIMIT ?", (key, after, key, after, rows)).fetchall()
            if not page:
                return
            yield np.fromiter((r[0] for r in page), dtype=np.int64, count=len(page)), [r[1] for r in page]
            after = page[-1][0]

    def hashes(self, key: str) -> Hashes:
        # One read transaction, so that the stamp is that of the rows read, whoever writes
        # meanwhile. Inside this connection's own batch the rows may never be committed: no stamp.
        ours = self._db.in_transaction
        if not ours:
            self._db.execute("BEGIN")
        try:
            stamp = None if ours else self.hash_stamp()
            # Two values in all, not two a row: the hashes end to end in one blob, the ids as one
            # text. Both aggregates take the rows in the same order, so the nth id owns the nth
            # hash; in the primary key's order (method, file_id), one run of pages and no sort.
            blob, text, count = self._db.execute(
                "SELECT CAST(group_concat(data, '') AS BLOB), group_concat(file_id), count(*)"
                " FROM (SELECT file_id, data FROM hashes WHERE method = ? ORDER BY method, file_id)", (key,)
            ).fetchone()
            rows = None
            if count and len(blob) != 8 * count:  # not all 64-bit: row by row, as they are
                rows = self._db.execute(
                    "SELECT file_id, data FROM hashes WHERE method = ? ORDER BY method, file_id", (key,)
                ).fetchall()
        finally:
            if not ours:
                self._db.execute("COMMIT")
        if rows is not None:
            ids = np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=len(rows))
            return Hashes(ids, np.frombuffer(b"".join(map(itemgetter(1), rows)), dtype=np.uint64), stamp)
        if not count:
            return Hashes(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64), stamp)
        ids = np.fromstring(text, dtype=np.int64, sep=",")
        values = np.frombuffer(blob, dtype=np.uint64)
        if len(ids) > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            # SQLite does not promise an aggregate's order: the pairs stand, the order is made here.
            order = np.argsort(ids, kind="stable")
            ids, values = ids[order], values[order]
        return Hashes(ids, values, stamp)

    def hash_stamp(self) -> bytes | None:
        row = self._db.execute("SELECT token, changes FROM hash_stamp WHERE id = 1").fetchone()
        return None if row is None else bytes(row[0]) + int(row[1]).to_bytes(8, "big")

    def record_pair(self, file_id: int, match_id: int, match: Match, tell: bool = True) -> bool:
        self._write()
        now = time.time()
        # A pair is known in either direction: a touched original re-indexed after its copy
        # finds the copy, and that is not news.
        cur = self._db.execute(
            "INSERT INTO pairs (file_id, match_id, kind, method, score, distance, found_at)"
            " SELECT ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM pairs WHERE"
            " (file_id = ? AND match_id = ?) OR (file_id = ? AND match_id = ?))",
            (file_id, match_id, match.kind, match.method, match.score, match.distance, now,
             file_id, match_id, match_id, file_id),
        )
        if cur.rowcount != 1:
            return False
        if not tell:
            return True
        hashes = [self.content_hash(file_id), self.content_hash(match_id)]
        low, high = sorted(h or b"" for h in hashes)
        told = (match.path, match.match, match.match, match.path)
        if self._db.execute(TOLD, (low, high, *told, match.group, match.path, hashes[0], match.path,
                           hashes[0])).fetchone():
            return False  # told before, about these two contents
        geometry = None if match.geometry is None else json.dumps(match.geometry)
        self._db.execute(
            "INSERT INTO notices (found_at, path, match, kind, method, score, distance, transform,"
            " geometry, turned, grp, keep, file_id, match_id, path_hash, match_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (now, match.path, match.match, match.kind, match.method, match.score, match.distance,
             match.transform, geometry, match.turned, match.group, match.keep, file_id, match_id, *hashes),
        )
        return True

    # -- groups ---------------------------------------------------------------------------------

    def group_of(self, file_id: int) -> int | None:
        row = self._db.execute("SELECT grp FROM files WHERE id = ?", (file_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def group(self, group_id: int) -> Group | None:
        row = self._db.execute("SELECT keeper_id, chosen_id FROM groups WHERE id = ?", (group_id,)).fetchone()
        if row is None:
            return None
        rows = self._db.execute(
            "SELECT id, path, width, height, size, mtime_ns, format, meta, pixels FROM files"
            " WHERE grp = ? ORDER BY id", (group_id,)).fetchall()
        members = [Member(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7] or 0, pixels=r[8] or 0)
                   for r in rows]
        unread = [r[0] for r in rows if r[7] is None]
        return Group(group_id, row[0], row[1], members, unread)

    def keeper_of(self, file_id: int) -> int | None:
        row = self._db.execute("SELECT g.keeper_id FROM files f JOIN groups g ON g.id = f.grp WHERE f.id = ?",
                               (file_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def groups(self) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT id FROM groups ORDER BY id").fetchall()]

    def all_groups(self) -> Iterator[Group]:
        heads = {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT id, keeper_id, chosen_id FROM groups")}
        # Along the partial index on files.grp: in group order already, no sort.
        rows = self._db.execute("SELECT grp, id, path, width, height, size, mtime_ns, format, meta, pixels"
                                " FROM files WHERE grp IS NOT NULL ORDER BY grp, id").fetchall()
        yield from _groups(heads, rows)

    def save_group(self, group_id: int | None, member_ids: Sequence[int], keeper_id: int | None,
                   chosen_id: int | None) -> int:
        self._write()
        ids = json.dumps(list(member_ids))
        if group_id is None:
            cur = self._db.execute("INSERT INTO groups (keeper_id, chosen_id, created_at) VALUES (?, ?, ?)",
                                   (keeper_id, chosen_id, time.time()))
            group_id = int(cur.lastrowid or 0)
        else:
            self._db.execute("UPDATE groups SET keeper_id = ?, chosen_id = ? WHERE id = ?",
                             (keeper_id, chosen_id, group_id))
            # Only the rows that change are written: a group of thousands gains one file at a time.
            self._db.execute("UPDATE files SET grp = NULL WHERE grp = ? AND id NOT IN"
                             " (SELECT value FROM json_each(?))", (group_id, ids))
        self._db.execute("UPDATE files SET grp = ? WHERE id IN (SELECT value FROM json_each(?))"
                         " AND grp IS NOT ?", (group_id, ids, group_id))
        return group_id

    def drop_group(self, group_id: int) -> None:
        self._write()
        self._db.execute("UPDATE files SET grp = NULL WHERE grp = ?", (group_id,))
        self._db.execute("DELETE FROM groups WHERE id = ?", (group_id,))

    def put_header(self, file_id: int, header: Header) -> None:
        self._write()
        self._db.execute("UPDATE files SET format = ?, meta = ?, taken = ? WHERE id = ?", (*header, file_id))

    def taken(self, file_id: int) -> str | None:
        row = self._db.execute("SELECT taken FROM files WHERE id = ?", (file_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def pairs(self) -> Iterator[Match]:
        rows = self._db.execute(
            "SELECT f.path, m.path, p.kind, p.method, p.score, p.distance FROM pairs p"
            " JOIN files f ON f.id = p.file_id JOIN files m ON m.id = p.match_id ORDER BY p.id"
        ).fetchall()
        return (Match(*r) for r in rows)

    def notices(self, after: int, limit: int) -> list[Notice]:
        rows = self._db.execute(
            f"SELECT {NOTICE} FROM notices n WHERE id > ? ORDER BY id LIMIT ?", (after, limit)  # noqa: S608
        ).fetchall()
        return [_notice(r) for r in rows]

    def position(self, sink: str) -> int:
        # Not batched: positions are written by the threads that deliver, each on its own
        # connection, beside the one that ingests.
        self._db.execute(
            "INSERT OR IGNORE INTO sink_positions (sink, delivered)"
            " SELECT ?, coalesce(max(id), 0) FROM notices", (sink,)
        )
        return int(self._db.execute(
            "SELECT delivered FROM sink_positions WHERE sink = ?", (sink,)).fetchone()[0])

    def delivered(self, sink: str, notice_id: int) -> None:
        self._db.execute("UPDATE sink_positions SET delivered = max(delivered, ?) WHERE sink = ?",
                         (notice_id, sink))

    # -- review ------------------------------------------------------------------------------

    def not_duplicates(self, content_hash: bytes) -> set[bytes]:
        rows = self._db.execute(
            "SELECT high FROM not_duplicates WHERE low = ?"
            " UNION SELECT low FROM not_duplicates WHERE high = ?", (content_hash, content_hash)).fetchall()
        return {bytes(r[0]) for r in rows}

    def turned(self, file_id: int) -> float:
        row = self._db.execute("SELECT turned FROM files WHERE id = ?", (file_id,)).fetchone()
        return float(row[0]) if row else 0.0

    def content_hash(self, file_id: int) -> bytes | None:
        row = self._db.execute("SELECT content_hash FROM files WHERE id = ?", (file_id,)).fetchone()
        return bytes(row[0]) if row else None

    def set_not_duplicate(self, a: bytes, b: bytes, decided: bool) -> bool:
        low, high = sorted((a, b))
        self._write()
        if decided:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO not_duplicates (low, high, decided_at) VALUES (?, ?, ?)",
                (low, high, time.time()))
        else:
            cur = self._db.execute("DELETE FROM not_duplicates WHERE low = ? AND high = ?", (low, high))
        self.commit()
        return cur.rowcount == 1

    def set_seen(self, notice_id: int, seen: bool) -> bool:
        self._write()
        cur = self._db.execute("UPDATE notices SET seen_at = ? WHERE id = ?",
                               (time.time() if seen else None, notice_id))
        self.commit()
        return cur.rowcount == 1

    def review(self, which: ReviewFilter, offset: int, limit: int) -> tuple[list[Reviewed], int]:
        where, args = review_where(which, STATUS, "?")
        # The SQL here is built from this module's constants only; values go in as parameters.
        total = int(self._db.execute(f"SELECT count(*) FROM notices n WHERE {where}", args).fetchone()[0])  # noqa: S608
        rows = self._db.execute(
            f"{REVIEW} WHERE {where} ORDER BY n.id DESC LIMIT ? OFFSET ?", (*args, limit, offset)
        ).fetchall()
        return [_reviewed(r) for r in rows], total

    def reviewed(self, notice_id: int) -> Reviewed | None:
        row = self._db.execute(f"{REVIEW} WHERE n.id = ?", (notice_id,)).fetchone()
        return _reviewed(row) if row else None

    def latest_notice(self, a: bytes, b: bytes) -> Reviewed | None:
        low, high = sorted((a, b))
        row = self._db.execute(
            f"{REVIEW} WHERE min(n.path_hash, n.match_hash) = ? AND max(n.path_hash, n.match_hash) = ?"
            " ORDER BY n.id DESC LIMIT 1", (low, high)).fetchone()
        return _reviewed(row) if row else None

    def file_view(self, file_id: int) -> FileView | None:
        row = self._db.execute(f"SELECT {FILE.format(t='f')} FROM files f WHERE id = ?",  # noqa: S608
                               (file_id,)).fetchone()
        return _file(row, row[1]) if row else None

    def reviewed_ids(self) -> set[int]:
        rows = self._db.execute(f"SELECT n.id FROM notices n WHERE NOT ({STATUS['unreviewed']})")  # noqa: S608
        return {r[0] for r in rows}

    def notice_methods(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT method FROM notices ORDER BY method")]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM files").fetchone()[0])

    def content_hashes(self) -> set[bytes]:
        return {bytes(r[0]) for r in self._db.execute("SELECT DISTINCT content_hash FROM files")}

    def beside(self, name: str) -> Path | None:
        return self.path.with_name(f"{self.path.name}.{name}")


def _signed(n: int) -> int:
    """An unsigned 64-bit number (a device or inode number: overlayfs and some NFS servers use the
    top bit) as the signed one SQLite's INTEGER holds, with the same 64 bits."""
    return n - 2**64 if n >= 2**63 else n


def cache_error(path: Path, exc: sqlite3.Error, opening: bool = False) -> DupwatchError:
    """What is wrong with the cache, and what to do about it, in one line.

    A damaged page is found by the first query that reads it, which may come long after the
    open: callers turn errors into this at one boundary (`cli.main`), not query by query.
    """
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        advice = (f"run `dupwatch check --cache {path}` to see the damage; move it aside (or delete"
                  " it) and scan again: a rescan rebuilds it")
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        advice = "give this user write access to it and to its folder, or use another --cache"
    elif name == "SQLITE_FULL":
        advice = f"the disk is full: free some space on it (df {path.parent})"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        advice = "another process holds it locked: try again when that one is done"
    else:
        advice = f"run `dupwatch check --cache {path}` to see what is wrong"
    return DupwatchError(f"{'cannot open cache' if opening else 'cache'} {path}: {exc}; {advice}")


@dataclass
class Health:
    """What `dupwatch check` found: PRAGMA integrity_check's problems (none: ok), and counts."""

    problems: list[str]
    schema: int | None = None
    files: int | None = None
    notices: int | None = None


def check(path: Path, limit: int = 20) -> Health:
    """Read the whole cache, changing nothing: SQLite's integrity check and a few counts."""
    if not path.is_file():
        raise DupwatchError(f"no cache at {path}: nothing was indexed there yet (see --cache, cache.path)")
    try:
        # Read-only, and never created: checking must not make or change what it looks at.
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise cache_error(path, exc, opening=True) from None
    health = Health([])
    try:
        try:
            health.problems = _integrity(db, f"PRAGMA integrity_check({limit})")
        except sqlite3.DatabaseError as exc:
            # A page the whole check cannot walk past stops it with no row: say which tables.
            health.problems = [str(exc)]
            try:
                tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            except sqlite3.DatabaseError:
                tables = []
            for table in tables:
                quoted = table.replace('"', '""')
                try:
                    health.problems += [f"table {table}: {p}" for p in
                                        _integrity(db, f'PRAGMA integrity_check("{quoted}")')]
                except sqlite3.DatabaseError as exc:
                    health.problems.append(f"table {table}: {exc}")
        for field, sql in (("schema", "PRAGMA user_version"), ("files", "SELECT count(*) FROM files"),
                           ("notices", "SELECT count(*) FROM notices")):
            try:
                setattr(health, field, int(db.execute(sql).fetchone()[0]))
            except sqlite3.DatabaseError as exc:
                health.problems.append(f"{field}: {exc}")
    finally:
        db.close()
    return health


def _integrity(db: sqlite3.Connection, pragma: str) -> list[str]:
    lines = [line for (row,) in db.execute(pragma).fetchall() for line in str(row).splitlines()]
    return [line for line in lines if line != "ok" and not line.startswith("*** in database")]


NOTICE = ("n.id, n.found_at, n.path, n.match, n.kind, n.method, n.score, n.distance, n.transform, n.geometry,"
          " n.turned, n.grp, n.keep")
FILE = "{t}.id, {t}.path, {t}.size, {t}.mtime_ns, {t}.width, {t}.height, {t}.content_hash"
NOT_DUPLICATE = ("EXISTS (SELECT 1 FROM not_duplicates d WHERE d.low = min(n.path_hash, n.match_hash)"
                 " AND d.high = max(n.path_hash, n.match_hash))")
# A notice's files as indexed now: by id, and only while they hold the content the notice was about.
REVIEW = (f"SELECT {NOTICE}, n.seen_at IS NOT NULL, {NOT_DUPLICATE}, n.path_hash, n.match_hash,"  # noqa: S608
          f" {FILE.format(t='f')}, {FILE.format(t='m')}"
          " FROM notices n"
          " LEFT JOIN files f ON f.id = n.file_id AND f.content_hash = n.path_hash"
          " LEFT JOIN files m ON m.id = n.match_id AND m.content_hash = n.match_hash")
STATUS = {
    "unreviewed": f"n.seen_at IS NULL AND NOT {NOT_DUPLICATE}",
    "seen": "n.seen_at IS NOT NULL",
    "not-duplicate": NOT_DUPLICATE,
    "all": "1",
}

# Told before: a notice about the same two contents at the same two paths, or a notice of the
# same group that named this file, with this content (a copy forgotten and found again joins its
# group again, perhaps beside another of its files). A pair is told once, whatever became of its
# files since; a new file with the same bytes is news.
TOLD = ("SELECT 1 WHERE EXISTS (SELECT 1 FROM notices n WHERE min(path_hash, match_hash) = ?"
        " AND max(path_hash, match_hash) = ?"
        " AND ((path = ? AND n.match = ?) OR (path = ? AND n.match = ?)))"
        " OR EXISTS (SELECT 1 FROM notices n WHERE grp = ?"
        " AND ((path = ? AND path_hash = ?) OR (n.match = ? AND match_hash = ?)))")


def _groups(heads: dict[int, tuple[int | None, int | None]], rows: list[Any]) -> Iterator[Group]:
    """Groups from their heads (id → keeper, chosen) and their files' rows (group id, then a
    Member's fields), in group order."""
    members: list[Member] = []
    unread: list[int] = []
    current = -1
    for r in rows:
        if r[0] != current:
            if current in heads:
                yield Group(current, *heads[current], members, unread)
            current, members, unread = r[0], [], []
        members.append(Member(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] or 0, pixels=r[9] or 0))
        if r[8] is None:
            unread.append(r[1])
    if current in heads:
        yield Group(current, *heads[current], members, unread)


def _notice(row: Any) -> Notice:
    geometry = None if row[9] is None else json.loads(row[9])
    return Notice(row[0], row[1], Match(row[2], row[3], row[4], row[5], row[6], row[7], row[8], geometry,
                                        row[10], row[11], row[12]))


def _file(row: Any, path: str) -> FileView:
    if row[0] is None:
        return FileView(None, path)
    return FileView(row[0], row[1], row[2], row[3], row[4], row[5], bytes(row[6]))


def _reviewed(row: Any) -> Reviewed:
    notice = _notice(row)
    at, width = len(NOTICE.split(",")), len(FILE.split(","))  # REVIEW's columns after NOTICE's
    seen, not_duplicate, path_hash, match_hash = row[at:at + 4]
    duplicate = _file(row[at + 4:at + 4 + width], notice.match.path)
    original = _file(row[at + 4 + width:at + 4 + 2 * width], notice.match.match)
    hashes = None if path_hash is None or match_hash is None else (bytes(path_hash), bytes(match_hash))
    return Reviewed(notice, duplicate, original, bool(seen), bool(not_duplicate), hashes)
