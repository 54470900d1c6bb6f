"""The embedded store: one SQLite file in WAL mode, written by one connection in batches.

WAL with synchronous=NORMAL survives a kill -9 of dupwatch: a killed run loses at most the batch
it had not committed, never the database. Another process (a second `scan`, the daemon) waits
for the lock instead of failing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dupwatch.errors import DupwatchError
from dupwatch.record import Match, Notice, Photo
from dupwatch.store.base import Known
from dupwatch.store.migrations import MIGRATIONS

BATCH_FILES = 256
BATCH_SECONDS = 1.0


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.DatabaseError, OSError) as exc:
            raise DupwatchError(f"cannot open cache {path}: {exc}") from None
        self._pending = 0
        self._batch_started = 0.0

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
        self.commit()
        self._db.close()

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
        values = (photo.path, st.size, st.mtime_ns, st.dev, st.ino, photo.content_hash,
                  photo.width, photo.height, plan, time.time())
        row = self._db.execute(
            "SELECT id, content_hash FROM files WHERE path = ?", (photo.path,)
        ).fetchone()
        if row is None:
            cur = self._db.execute(
                "INSERT INTO files (path, size, mtime_ns, dev, ino, content_hash, width, height,"
                " plan, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
            file_id = int(cur.lastrowid or 0)
        else:
            file_id = int(row[0])
            self._db.execute(
                "UPDATE files SET path = ?, size = ?, mtime_ns = ?, dev = ?, ino = ?,"
                " content_hash = ?, width = ?, height = ?, plan = ?, indexed_at = ? WHERE id = ?",
                (*values, file_id),
            )
            self._db.execute("DELETE FROM fingerprints WHERE file_id = ?", (file_id,))
            if bytes(row[1]) != photo.content_hash:
                # New content: what was said about the old content no longer holds. The same
                # bytes touched or fingerprinted anew keep their pairs, so none is told twice.
                self._db.execute("DELETE FROM pairs WHERE file_id = ? OR match_id = ?", (file_id, file_id))
        self._db.executemany(
            "INSERT INTO fingerprints (file_id, method, data) VALUES (?, ?, ?)",
            [(file_id, key, data) for key, data in photo.fingerprints.items()],
        )
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

    def paths_of_inode(self, dev: int, ino: int) -> list[str]:
        rows = self._db.execute("SELECT path FROM files WHERE dev = ? AND ino = ?", (dev, ino)).fetchall()
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

    def fingerprint(self, file_id: int, key: str) -> bytes | None:
        row = self._db.execute(
            "SELECT data FROM fingerprints WHERE file_id = ? AND method = ?", (file_id, key)
        ).fetchone()
        return bytes(row[0]) if row else None

    def put_fingerprint(self, file_id: int, key: str, data: bytes) -> None:
        self._write()
        self._db.execute(
            "INSERT OR REPLACE INTO fingerprints (file_id, method, data) VALUES (?, ?, ?)",
            (file_id, key, data),
        )

    def fingerprints(self, key: str) -> tuple[np.ndarray, list[bytes]]:
        rows = self._db.execute(
            "SELECT file_id, data FROM fingerprints WHERE method = ? ORDER BY file_id", (key,)
        ).fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, [r[1] for r in rows]

    def record_pair(self, file_id: int, match_id: int, match: Match) -> bool:
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
        self._db.execute(
            "INSERT INTO notices (found_at, path, match, kind, method, score, distance, transform)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (now, match.path, match.match, match.kind, match.method, match.score, match.distance,
             match.transform),
        )
        return True

    def pairs(self) -> Iterator[Match]:
        rows = self._db.execute(
            "SELECT f.path, m.path, p.kind, p.method, p.score, p.distance FROM pairs p"
            " JOIN files f ON f.id = p.file_id JOIN files m ON m.id = p.match_id ORDER BY p.id"
        ).fetchall()
        return (Match(*r) for r in rows)

    def notices(self, after: int, limit: int) -> list[Notice]:
        rows = self._db.execute(
            "SELECT id, found_at, path, match, kind, method, score, distance, transform FROM notices"
            " WHERE id > ? ORDER BY id LIMIT ?", (after, limit)
        ).fetchall()
        return [Notice(r[0], r[1], Match(*r[2:])) for r in rows]

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

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM files").fetchone()[0])

