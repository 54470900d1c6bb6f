"""The shared store: a PostgreSQL database that several hosts may index into.

Same contract as `SqliteStore` (see `base.py`): writes are grouped into a transaction that
`file_done()` commits every BATCH_FILES files or BATCH_SECONDS; a pair and its notice go in one
transaction; decisions and sink positions commit at once; sinks read only committed notices.

A file is known by (host, path). This store writes, and looks paths up, for its own host only;
`exact`, `fingerprints`, `count` and `content_hashes` see every host's files. A file of another
host is named `host:path` (`path_of`, `pairs`, `file_view`), which no absolute local path can be.

File names go in and come back as they were, through `names.py`, as in SQLite: every str
parameter through `names.to_store`, every text value read through `names.text_factory`.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.pq import TransactionStatus
from psycopg.rows import DictRow, dict_row

from dupwatch.errors import CacheUnavailable, DupwatchError
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
from dupwatch.store.pg_schema import ANNOUNCED, DELIVERY_LOCK, MIGRATE_LOCK, MIGRATIONS, NOTICES_LOCK
from dupwatch.store.sql import review_where
from dupwatch.store.sqlite import BATCH_FILES, BATCH_SECONDS, HASH_BYTES, PAGE_ROWS

SCHEMES = ("postgresql", "postgres")
# What the server or the network does to us, as opposed to a bug in a query: one line for the user.
USER_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, psycopg.errors.InsufficientPrivilege,
               psycopg.errors.ReadOnlySqlTransaction)


class _NameLoader(Loader):
    """Every text value read, as the name it stands for."""

    def load(self, data: Buffer) -> str:
        return names.text_factory(bytes(data))


def shown_url(url: str) -> str:
    """The URL without its password (in the user part or as a `password=` parameter)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, where = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{where}"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"],
                      safe="/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# Said by libpq or the server when the server is there but will not have us: these stay fatal.
REFUSALS = ("authentication", "no password supplied", "does not exist", "permission denied",
            "no pg_hba.conf entry", "does not support ssl", "certificate", "invalid")
# SQLSTATE classes of a server going away or not up yet: a connection exception (08), an
# operator's shutdown or a server starting up or recovering (57P01-57P05).
GONE_STATES = ("08", "57P")


def unavailable(exc: psycopg.Error, lost: bool = False) -> bool:
    """Whether `exc` says the server is unreachable or went away (it may come back), as opposed
    to wrong credentials, a missing database, or a bug. `lost`: the connection broke."""
    if lost:
        return True
    state = exc.sqlstate
    if state is not None:
        return state.startswith(GONE_STATES)
    if not isinstance(exc, psycopg.OperationalError):
        return False
    # No SQLSTATE: libpq did not get as far as a server's answer (refused, no socket, timed
    # out, reset), unless the message names a refusal.
    low = str(exc).lower()
    return not any(word in low for word in REFUSALS)


def pg_error(url: str, exc: psycopg.Error, opening: bool = False, lost: bool = False) -> DupwatchError:
    """What is wrong with the database, and what to do about it, in one line; a server that is
    unreachable or went away is a `CacheUnavailable`."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    text = text.removeprefix("connection failed: ")
    low = text.lower()
    if "password authentication failed" in low or "no password supplied" in low or "authentication" in low:
        advice = "check the user and password (in the URL, $PGPASSWORD or ~/.pgpass)"
    elif "database" in low and "does not exist" in low:
        advice = "create it first (createdb, or CREATE DATABASE), see docs/postgres.md"
    elif "read-only transaction" in low:
        advice = "this server is a read-only standby: use the primary's URL"
    elif "permission denied" in low:
        advice = "give this user the rights on the database (see docs/postgres.md)"
    elif "is the server running" in low:
        advice = "start it, or check the URL's server and port"
    else:
        advice = "is the server running, and reachable from here?"
    message = f"{'cannot open cache' if opening else 'cache'} {shown_url(url)}: {text}; {advice}"
    if unavailable(exc, lost):
        return CacheUnavailable(shown_url(url), text, message)
    return DupwatchError(message)


class PostgresStore:
    def __init__(self, url: str, host: str | None = None) -> None:
        self.url = url
        self.host = host or socket.gethostname()
        # Libpq otherwise waits as long as the operating system does for a host that is off.
        extra: dict[str, Any] = {} if "connect_timeout" in url else {"connect_timeout": 10}
        self._extra = extra
        self._listener: psycopg.Connection[Any] | None = None
        try:
            self._conn: psycopg.Connection[DictRow] = psycopg.connect(
                url, autocommit=True, row_factory=dict_row, **extra)
        except psycopg.Error as exc:
            raise pg_error(url, exc, opening=True) from None
        for text_type in ("text", "varchar"):
            self._conn.adapters.register_loader(text_type, _NameLoader)
        shown = self._one("SHOW server_encoding")
        encoding = None if shown is None else shown["server_encoding"]
        if encoding != "UTF8":
            self._conn.close()
            raise DupwatchError(f"cannot open cache {shown_url(url)}: the database's encoding is"
                                f" {encoding}; create it with ENCODING 'UTF8' (see docs/postgres.md)")
        self._migrate()
        self._pending = 0
        self._batch_started = 0.0

    # -- the connection ----------------------------------------------------------------------

    def _execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = (),
                 binary: bool = False) -> psycopg.Cursor[DictRow]:
        """One statement; `binary`: its results in binary, not a bytea's every byte in hex."""
        bound: tuple[Any, ...] | dict[str, Any]
        if isinstance(parameters, Mapping):
            bound = {k: names.to_store(v) if isinstance(v, str) else v for k, v in parameters.items()}
        else:
            bound = tuple(names.to_store(p) if isinstance(p, str) else p for p in parameters)
        try:
            return self._conn.execute(sql, bound or None, binary=binary)
        except USER_ERRORS as exc:
            raise pg_error(self.url, exc, lost=self._conn.broken) from None

    def _one(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> DictRow | None:
        return self._execute(sql, parameters).fetchone()

    def _all(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> list[DictRow]:
        return self._execute(sql, parameters).fetchall()

    def _in_transaction(self) -> bool:
        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def _migrate(self) -> None:
        self._execute("BEGIN")
        try:
            self._execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            known = self._one("SELECT to_regclass('schema_version') IS NOT NULL AS known")
            # Created only in a new database: IF NOT EXISTS would need the right to create, which a
            # user that only reads and writes the rows may not have.
            if known is None or not known["known"]:
                self._execute("CREATE TABLE schema_version (version integer NOT NULL)")
            row = self._one("SELECT version FROM schema_version")
            if row is None:
                self._execute("INSERT INTO schema_version (version) VALUES (0)")
            version = 0 if row is None else int(row["version"])
            if version > len(MIGRATIONS):
                raise DupwatchError(
                    f"cache {shown_url(self.url)} has schema {version}, newer than this dupwatch knows"
                    f" ({len(MIGRATIONS)}); upgrade dupwatch or use another database")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                self._conn.execute(script.encode())  # several statements, no parameters
                self._execute("UPDATE schema_version SET version = %s", (number,))
        except BaseException:
            if not self._conn.closed:
                self._conn.execute("ROLLBACK")
                self._conn.close()
            raise
        self._execute("COMMIT")

    # Writes are grouped: a transaction opens on the first write and commits every
    # BATCH_FILES files or BATCH_SECONDS, whichever comes first, and at close.
    def _write(self) -> None:
        if not self._in_transaction():
            self._execute("BEGIN")
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
        if self._in_transaction():
            self._execute("COMMIT")  # a failed transaction is rolled back by it

    def take_delivery(self) -> str | None:
        # A session lock: the server lets go of it when this connection ends, a killed process's
        # included (its socket closes).
        row = self._one("SELECT pg_try_advisory_lock(%s) AS taken", (DELIVERY_LOCK,))
        if row is not None and row["taken"]:
            return None
        return "another dupwatch process, on this host or another, delivers them (the database's lock)"

    def close(self) -> None:
        """Commit and close; a connection already lost is only let go (its batch is gone with it)."""
        if self._listener is not None:
            self._listener.close()  # never fails: a lost connection is only let go
            self._listener = None
        if self._conn.closed:
            self._conn.close()  # a broken connection's resources
            return
        try:
            self.commit()
        finally:
            self._conn.close()

    def _named(self, host: str, path: str) -> str:
        return path if host == self.host else f"{host}:{path}"

    # -- catalog -----------------------------------------------------------------------------

    def get(self, path: str) -> Known | None:
        row = self._one("SELECT id, size, mtime_ns, plan FROM files WHERE host = %s AND path = %s",
                        (self.host, path))
        return None if row is None else Known(row["id"], row["size"], row["mtime_ns"], row["plan"])

    def path_of(self, file_id: int) -> str | None:
        row = self._one("SELECT host, path FROM files WHERE id = %s", (file_id,))
        return None if row is None else self._named(row["host"], row["path"])

    def put(self, photo: Photo, plan: str) -> int:
        """Insert or replace the file at `photo.path`; a replaced file keeps its id."""
        self._write()
        st = photo.stat
        values = (st.size, st.mtime_ns, st.dev, st.ino, photo.content_hash, photo.width, photo.height,
                  plan, time.time(), photo.turned, photo.pixels or None)
        methods = [names.to_store(key) for key in photo.fingerprints]
        data = list(photo.fingerprints.values())
        # A new file, the usual case, in one round trip: the file and its fingerprints together.
        inserted = self._one(
            "WITH f AS (INSERT INTO files (host, path, size, mtime_ns, dev, ino, content_hash, width, height,"
            " plan, indexed_at, turned, pixels)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (host, path) DO NOTHING RETURNING id),"
            " x AS (SELECT * FROM unnest(%s::text[], %s::bytea[]) AS x (method, data)),"
            " h AS (INSERT INTO hashes (method, file_id, data) SELECT x.method, f.id, x.data FROM f, x"
            "       WHERE octet_length(x.data) <= %s),"
            " fp AS (INSERT INTO fingerprints (file_id, method, data) SELECT f.id, x.method, x.data"
            "        FROM f, x WHERE octet_length(x.data) > %s)"
            " SELECT id FROM f", (self.host, photo.path, *values, methods, data, HASH_BYTES, HASH_BYTES))
        if inserted is not None:
            return int(inserted["id"])
        row = self._one("SELECT id, content_hash FROM files WHERE host = %s AND path = %s FOR UPDATE",
                        (self.host, photo.path))
        if row is None:  # removed since, by another process of this host
            return self.put(photo, plan)
        file_id = int(row["id"])
        self._execute(
            "UPDATE files SET size = %s, mtime_ns = %s, dev = %s, ino = %s, content_hash = %s,"
            " width = %s, height = %s, plan = %s, indexed_at = %s, turned = %s, pixels = %s, format = NULL,"
            " meta = NULL, taken = NULL"
            " WHERE id = %s",
            (*values, file_id))
        self._execute("WITH h AS (DELETE FROM hashes WHERE file_id = %(id)s)"
                      " DELETE FROM fingerprints WHERE file_id = %(id)s", {"id": file_id})
        if bytes(row["content_hash"]) != photo.content_hash:
            # New content: what was said about the old content no longer holds. The same
            # bytes touched or fingerprinted anew keep their pairs, so none is told twice.
            self._execute("DELETE FROM pairs WHERE file_id = %s OR match_id = %s", (file_id, file_id))
        for key, fingerprint in zip(methods, data, strict=True):
            self._put_fingerprint(file_id, key, fingerprint)
        return file_id

    def remove(self, path: str) -> int | None:
        """Forget a path (and its pairs); returns the id it had."""
        self._write()
        row = self._one("DELETE FROM files WHERE host = %s AND path = %s RETURNING id", (self.host, path))
        self._wrote_file()
        return None if row is None else int(row["id"])

    def rename(self, old: str, new: str) -> int | None:
        """A file moved: `old` becomes `new`, keeping its id, fingerprints and pairs. None when
        `old` is unknown. `new` must not be known (remove it first)."""
        self._write()
        row = self._one("UPDATE files SET path = %s WHERE host = %s AND path = %s RETURNING id",
                        (new, self.host, old))
        self._wrote_file()
        return None if row is None else int(row["id"])

    def trouble(self, path: str) -> Trouble | None:
        row = self._one("SELECT size, mtime_ns, reason FROM troubles WHERE host = %s AND path = %s",
                        (self.host, path))
        return None if row is None else Trouble(row["size"], row["mtime_ns"], row["reason"])

    def put_trouble(self, path: str, size: int, mtime_ns: int, reason: str) -> None:
        self._write()
        self._execute(
            "INSERT INTO troubles (host, path, size, mtime_ns, reason, found_at)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (host, path) DO UPDATE SET size = excluded.size,"
            " mtime_ns = excluded.mtime_ns, reason = excluded.reason, found_at = excluded.found_at",
            (self.host, path, size, mtime_ns, reason, time.time()))

    def paths_of_inode(self, dev: int, ino: int) -> list[str]:
        """This host's cached paths of this file (device, inode)."""
        rows = self._all("SELECT path FROM files WHERE host = %s AND dev = %s AND ino = %s",
                         (self.host, dev, ino))
        return [r["path"] for r in rows]

    def paths_under(self, root: str) -> Iterator[str]:
        prefix = root.rstrip("/") + "/"
        # A byte-order range (the column is COLLATE "C") instead of LIKE, which would treat % and
        # _ in names as wildcards.
        rows = self._all("SELECT path FROM files WHERE host = %s AND path >= %s AND path < %s ORDER BY path",
                         (self.host, prefix, prefix[:-1] + "0"))  # "0" is the character after "/"
        return (r["path"] for r in rows)

    def exact(self, content_hash: bytes, limit: int = 8) -> list[int]:
        """Ids of the oldest `limit` files (of any host) with these exact bytes, oldest first."""
        rows = self._all("SELECT id FROM files WHERE content_hash = %s ORDER BY id LIMIT %s",
                         (content_hash, limit))
        return [int(r["id"]) for r in rows]

    def listen(self) -> None:
        # A connection of its own: the main one is inside a batch's transaction most of the
        # time, and a notification is delivered only between transactions.
        if self._listener is not None:
            return
        try:
            self._listener = psycopg.connect(self.url, autocommit=True, **self._extra)
            self._listener.execute(f"LISTEN {ANNOUNCED}")
        except psycopg.Error as exc:
            raise pg_error(self.url, exc, opening=True) from None

    def changed_elsewhere(self) -> list[int]:
        if self._listener is None:
            return []
        try:
            mine = self._conn.info.backend_pid  # this store's own writes are not news to it
            return [int(n.payload) for n in self._listener.notifies(timeout=0) if n.pid != mine]
        except psycopg.Error as exc:
            raise pg_error(self.url, exc, lost=True) from None

    def log_position(self) -> bytes | None:
        return None  # nothing is saved beside a shared database (`beside`)

    def changes_since(self, position: bytes) -> list[int] | None:
        return None

    def fingerprints_of(self, file_ids: Sequence[int], key: str) -> dict[int, tuple[str, bytes | None]]:
        rows = self._all("SELECT f.id, f.host, f.path, coalesce(h.data, p.data) AS data FROM files f"
                         " LEFT JOIN hashes h ON h.method = %(key)s AND h.file_id = f.id"
                         " LEFT JOIN fingerprints p ON p.file_id = f.id AND p.method = %(key)s"
                         " WHERE f.id = ANY(%(ids)s)", {"key": key, "ids": list(dict.fromkeys(file_ids))})
        return {int(r["id"]): (self._named(r["host"], r["path"]),
                               None if r["data"] is None else bytes(r["data"])) for r in rows}

    def fingerprint(self, file_id: int, key: str) -> bytes | None:
        row = self._one("SELECT data FROM hashes WHERE method = %(key)s AND file_id = %(id)s UNION ALL"
                        " SELECT data FROM fingerprints WHERE file_id = %(id)s AND method = %(key)s",
                        {"key": key, "id": file_id})
        return None if row is None else bytes(row["data"])

    def put_fingerprint(self, file_id: int, key: str, data: bytes) -> None:
        self._write()
        self._put_fingerprint(file_id, key, data)

    def _put_fingerprint(self, file_id: int, key: str, data: bytes) -> None:
        if len(data) <= HASH_BYTES:
            self._execute("INSERT INTO hashes (method, file_id, data) VALUES (%s, %s, %s)"
                          " ON CONFLICT (method, file_id) DO UPDATE SET data = excluded.data",
                          (key, file_id, data))
        else:
            self._execute("INSERT INTO fingerprints (file_id, method, data) VALUES (%s, %s, %s)"
                          " ON CONFLICT (file_id, method) DO UPDATE SET data = excluded.data",
                          (file_id, key, data))

    def fingerprints(self, key: str) -> tuple[np.ndarray, list[bytes]]:
        """Every file id (of every host) with a fingerprint of `key`, and those fingerprints."""
        return joined(self.fingerprint_pages(key))

    def fingerprint_pages(self, key: str, rows: int = PAGE_ROWS) -> Iterator[tuple[np.ndarray, list[bytes]]]:
        after = -1
        while True:
            page = self._execute(
                "SELECT file_id, data FROM hashes WHERE method = %(key)s AND file_id > %(after)s"
                " UNION ALL SELECT file_id, data FROM fingerprints WHERE method = %(key)s"
                " AND file_id > %(after)s ORDER BY file_id LIMIT %(rows)s",
                {"key": key, "after": after, "rows": rows}, binary=True).fetchall()
            if not page:
                return
            yield (np.fromiter((r["file_id"] for r in page), dtype=np.int64, count=len(page)),
                   [bytes(r["data"]) for r in page])
            after = page[-1]["file_id"]

    def hashes(self, key: str) -> Hashes:
        """Every file id (of every host) with a hash of `key`; never saved (`beside`): no stamp."""
        # Three values in all, not two a row: the ids and the hashes each end to end in one bytea,
        # both aggregated in the same order, so the nth id owns the nth hash.
        row = self._execute("SELECT string_agg(int8send(file_id), ''::bytea ORDER BY file_id) AS ids,"
                            " string_agg(data, ''::bytea ORDER BY file_id) AS data, count(*) AS n"
                            " FROM hashes WHERE method = %s", (key,), binary=True).fetchone()
        if row is None or not row["n"]:
            return Hashes(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64), None)
        if len(row["data"]) == 8 * row["n"]:
            ids = np.frombuffer(row["ids"], dtype=">i8").astype(np.int64)
            return Hashes(ids, np.frombuffer(bytes(row["data"]), dtype=np.uint64), None)
        # Not all 64-bit: row by row, as they are.
        ids, data = self.fingerprints(key)
        return Hashes(ids, np.frombuffer(b"".join(data), dtype=np.uint64), None)

    def hash_stamp(self) -> bytes | None:
        # Another host writes at any time, and an index saved here is not kept (`beside`).
        return None

    def record_pair(self, file_id: int, match_id: int, match: Match, tell: bool = True) -> bool:
        """Remember a pair; False when it was known already, in either direction. A new pair's
        notice is written with it, in the same transaction."""
        self._write()
        # Taken before the pair, so that two writers of the same pair cannot wait on each other.
        self._execute("SELECT pg_advisory_xact_lock(%s)", (NOTICES_LOCK,))
        now = time.time()
        row = self._one(
            "INSERT INTO pairs (file_id, match_id, kind, method, score, distance, found_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT ((least(file_id, match_id)), (greatest(file_id, match_id)))"
            " DO NOTHING RETURNING id",
            (file_id, match_id, match.kind, match.method, match.score, match.distance, now))
        if row is None:
            return False
        if not tell:
            return True
        hashes = [self.content_hash(file_id), self.content_hash(match_id)]
        low, high = sorted(h or b"" for h in hashes)
        told = (match.path, match.match, match.match, match.path)
        if self._one(TOLD, (low, high, *told, match.group, match.path, hashes[0], match.path,
                           hashes[0])):
            return False  # told before, about these two contents
        geometry = None if match.geometry is None else json.dumps(match.geometry)
        self._execute(
            "INSERT INTO notices (host, found_at, path, match, kind, method, score, distance, transform,"
            " geometry, turned, grp, keep, file_id, match_id, path_hash, match_hash)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (self.host, now, match.path, match.match, match.kind, match.method, match.score, match.distance,
             match.transform, geometry, match.turned, match.group, match.keep, file_id, match_id, *hashes))
        return True

    # -- groups: of every host's files ---------------------------------------------------------

    def group_of(self, file_id: int) -> int | None:
        row = self._one("SELECT grp FROM files WHERE id = %s", (file_id,))
        return None if row is None or row["grp"] is None else int(row["grp"])

    def group(self, group_id: int) -> Group | None:
        row = self._one("SELECT keeper_id, chosen_id FROM groups WHERE id = %s", (group_id,))
        if row is None:
            return None
        rows = self._all("SELECT id, host, path, width, height, size, mtime_ns, format, meta, pixels"
                         " FROM files WHERE grp = %s ORDER BY id", (group_id,))
        members = [Member(r["id"], self._named(r["host"], r["path"]), r["width"], r["height"], r["size"],
                          r["mtime_ns"], r["format"], r["meta"] or 0, pixels=r["pixels"] or 0) for r in rows]
        unread = [r["id"] for r in rows if r["meta"] is None]
        return Group(group_id, row["keeper_id"], row["chosen_id"], members, unread)

    def keeper_of(self, file_id: int) -> int | None:
        row = self._one("SELECT g.keeper_id FROM files f JOIN groups g ON g.id = f.grp WHERE f.id = %s",
                        (file_id,))
        return None if row is None or row["keeper_id"] is None else int(row["keeper_id"])

    def groups(self) -> list[int]:
        return [int(r["id"]) for r in self._all("SELECT id FROM groups ORDER BY id")]

    def all_groups(self) -> Iterator[Group]:
        rows = self._all(
            "SELECT g.id AS grp, g.keeper_id, g.chosen_id, f.id, f.host, f.path, f.width, f.height, f.size,"
            " f.mtime_ns, f.format, f.meta, f.pixels FROM groups g JOIN files f ON f.grp = g.id"
            " ORDER BY g.id, f.id")
        for _, members in itertools.groupby(rows, key=lambda r: r["grp"]):
            block = list(members)
            yield Group(block[0]["grp"], block[0]["keeper_id"], block[0]["chosen_id"],
                        [Member(r["id"], self._named(r["host"], r["path"]), r["width"], r["height"],
                                r["size"], r["mtime_ns"], r["format"], r["meta"] or 0,
                                pixels=r["pixels"] or 0) for r in block],
                        [r["id"] for r in block if r["meta"] is None])

    def save_group(self, group_id: int | None, member_ids: Sequence[int], keeper_id: int | None,
                   chosen_id: int | None) -> int:
        self._write()
        if group_id is None:
            row = self._one("INSERT INTO groups (keeper_id, chosen_id, created_at) VALUES (%s, %s, %s)"
                            " RETURNING id", (keeper_id, chosen_id, time.time()))
            assert row is not None
            group_id = int(row["id"])
        else:
            self._execute("UPDATE groups SET keeper_id = %s, chosen_id = %s WHERE id = %s",
                          (keeper_id, chosen_id, group_id))
            # Only the rows that change are written: a group of thousands gains one file at a time.
            self._execute("UPDATE files SET grp = NULL WHERE grp = %s AND NOT id = ANY(%s)",
                          (group_id, list(member_ids)))
        self._execute("UPDATE files SET grp = %s WHERE id = ANY(%s) AND grp IS DISTINCT FROM %s",
                      (group_id, list(member_ids), group_id))
        return group_id

    def drop_group(self, group_id: int) -> None:
        self._write()
        self._execute("UPDATE files SET grp = NULL WHERE grp = %s", (group_id,))
        self._execute("DELETE FROM groups WHERE id = %s", (group_id,))

    def put_header(self, file_id: int, header: Header) -> None:
        self._write()
        self._execute("UPDATE files SET format = %s, meta = %s, taken = %s WHERE id = %s", (*header, file_id))

    def taken(self, file_id: int) -> str | None:
        row = self._one("SELECT taken FROM files WHERE id = %s", (file_id,))
        return None if row is None or row["taken"] is None else str(row["taken"])

    def pairs(self) -> Iterator[Match]:
        rows = self._all(
            "SELECT f.host AS f_host, f.path AS f_path, m.host AS m_host, m.path AS m_path, p.kind,"
            " p.method, p.score, p.distance FROM pairs p JOIN files f ON f.id = p.file_id"
            " JOIN files m ON m.id = p.match_id ORDER BY p.id")
        return (Match(self._named(r["f_host"], r["f_path"]), self._named(r["m_host"], r["m_path"]),
                      r["kind"], r["method"], r["score"], r["distance"]) for r in rows)

    def content_hash(self, file_id: int) -> bytes | None:
        row = self._one("SELECT content_hash FROM files WHERE id = %s", (file_id,))
        return None if row is None else bytes(row["content_hash"])

    def content_hashes(self) -> set[bytes]:
        return {bytes(r["content_hash"]) for r in self._all("SELECT DISTINCT content_hash FROM files")}

    def count(self) -> int:
        row = self._one("SELECT count(*) AS n FROM files")
        return 0 if row is None else int(row["n"])

    def turned(self, file_id: int) -> float:
        row = self._one("SELECT turned FROM files WHERE id = %s", (file_id,))
        return 0.0 if row is None else float(row["turned"])

    def beside(self, name: str) -> Path | None:
        # An index saved on one host goes stale as soon as another host writes: rebuild it.
        return None

    # -- outbox ------------------------------------------------------------------------------

    def notices(self, after: int, limit: int) -> list[Notice]:
        rows = self._all(f"SELECT {NOTICE} FROM notices n WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608
                         (after, limit))
        return [_notice(r) for r in rows]

    def position(self, sink: str) -> int:
        self._execute("INSERT INTO sink_positions (sink, delivered) SELECT %s, coalesce(max(id), 0)"
                      " FROM notices ON CONFLICT (sink) DO NOTHING", (sink,))
        row = self._one("SELECT delivered FROM sink_positions WHERE sink = %s", (sink,))
        assert row is not None
        return int(row["delivered"])

    def delivered(self, sink: str, notice_id: int) -> None:
        self._execute("UPDATE sink_positions SET delivered = greatest(delivered, %s) WHERE sink = %s",
                      (notice_id, sink))

    # -- decisions ---------------------------------------------------------------------------

    def not_duplicates(self, content_hash: bytes) -> set[bytes]:
        rows = self._all("SELECT high AS other FROM not_duplicates WHERE low = %s"
                         " UNION SELECT low FROM not_duplicates WHERE high = %s",
                         (content_hash, content_hash))
        return {bytes(r["other"]) for r in rows}

    def set_not_duplicate(self, a: bytes, b: bytes, decided: bool) -> bool:
        low, high = sorted((a, b))
        self._write()
        if decided:
            cur = self._execute("INSERT INTO not_duplicates (low, high, decided_at) VALUES (%s, %s, %s)"
                                " ON CONFLICT DO NOTHING", (low, high, time.time()))
        else:
            cur = self._execute("DELETE FROM not_duplicates WHERE low = %s AND high = %s", (low, high))
        self.commit()
        return cur.rowcount == 1

    def set_seen(self, notice_id: int, seen: bool) -> bool:
        self._write()
        cur = self._execute("UPDATE notices SET seen_at = %s WHERE id = %s",
                            (time.time() if seen else None, notice_id))
        self.commit()
        return cur.rowcount == 1

    # -- review ------------------------------------------------------------------------------

    def review(self, which: ReviewFilter, offset: int, limit: int) -> tuple[list[Reviewed], int]:
        where, args = review_where(which, STATUS, "%s")
        # The SQL here is built from this module's constants only; values go in as parameters.
        row = self._one(f"SELECT count(*) AS n FROM notices n WHERE {where}", args)  # noqa: S608
        total = 0 if row is None else int(row["n"])
        rows = self._all(f"{REVIEW} WHERE {where} ORDER BY n.id DESC LIMIT %s OFFSET %s",
                         (*args, limit, offset))
        return [self._reviewed(r) for r in rows], total

    def reviewed(self, notice_id: int) -> Reviewed | None:
        row = self._one(f"{REVIEW} WHERE n.id = %s", (notice_id,))
        return None if row is None else self._reviewed(row)

    def latest_notice(self, a: bytes, b: bytes) -> Reviewed | None:
        low, high = sorted((a, b))
        row = self._one(f"{REVIEW} WHERE least(n.path_hash, n.match_hash) = %s"
                        " AND greatest(n.path_hash, n.match_hash) = %s ORDER BY n.id DESC LIMIT 1",
                        (low, high))
        return None if row is None else self._reviewed(row)

    def file_view(self, file_id: int) -> FileView | None:
        row = self._one(f"SELECT {FILE.format(t='f')} FROM files f WHERE id = %s", (file_id,))  # noqa: S608
        return None if row is None else self._file(row, "f", "")

    def reviewed_ids(self) -> set[int]:
        rows = self._all(f"SELECT n.id FROM notices n WHERE NOT ({STATUS['unreviewed']})")  # noqa: S608
        return {int(r["id"]) for r in rows}

    def notice_methods(self) -> list[str]:
        return [r["method"] for r in self._all("SELECT DISTINCT method FROM notices ORDER BY method")]

    def _file(self, row: DictRow, t: str, path: str) -> FileView:
        if row[f"{t}_id"] is None:
            return FileView(None, path)
        def col(name: str) -> Any:
            return row[f"{t}_{name}"]

        return FileView(int(col("id")), self._named(col("host"), col("path")), col("size"), col("mtime_ns"),
                        col("width"), col("height"), bytes(col("content_hash")))

    def _reviewed(self, row: DictRow) -> Reviewed:
        notice = _notice(row)
        hashes = (None if row["path_hash"] is None or row["match_hash"] is None
                  else (bytes(row["path_hash"]), bytes(row["match_hash"])))
        duplicate = self._file(row, "f", notice.match.path)
        original = self._file(row, "m", notice.match.match)
        return Reviewed(notice, duplicate, original, bool(row["seen"]), bool(row["not_duplicate"]), hashes)


NOTICE = ("n.id, n.found_at, n.path, n.match, n.kind, n.method, n.score, n.distance, n.transform, n.geometry,"
          " n.turned, n.grp, n.keep")
FILE = ("{t}.id AS {t}_id, {t}.host AS {t}_host, {t}.path AS {t}_path, {t}.size AS {t}_size,"
        " {t}.mtime_ns AS {t}_mtime_ns, {t}.width AS {t}_width, {t}.height AS {t}_height,"
        " {t}.content_hash AS {t}_content_hash")
NOT_DUPLICATE = ("EXISTS (SELECT 1 FROM not_duplicates d WHERE d.low = least(n.path_hash, n.match_hash)"
                 " AND d.high = greatest(n.path_hash, n.match_hash))")
# A notice's files as indexed now: by id, and only while they hold the content the notice was about.
REVIEW = (f"SELECT {NOTICE}, n.seen_at IS NOT NULL AS seen, {NOT_DUPLICATE} AS not_duplicate,"  # noqa: S608
          f" n.path_hash, n.match_hash, {FILE.format(t='f')}, {FILE.format(t='m')}"
          " FROM notices n"
          " LEFT JOIN files f ON f.id = n.file_id AND f.content_hash = n.path_hash"
          " LEFT JOIN files m ON m.id = n.match_id AND m.content_hash = n.match_hash")
STATUS = {
    "unreviewed": f"n.seen_at IS NULL AND NOT {NOT_DUPLICATE}",
    "seen": "n.seen_at IS NOT NULL",
    "not-duplicate": NOT_DUPLICATE,
    "all": "TRUE",
}

# Told before: a notice about the same two contents at the same two paths, or a notice of the
# same group that named this file, with this content (a copy forgotten and found again joins its
# group again, perhaps beside another of its files). A pair is told once, whatever became of its
# files since; a new file with the same bytes is news.
TOLD = ("SELECT 1 WHERE EXISTS (SELECT 1 FROM notices n WHERE least(path_hash, match_hash) = %s"
        " AND greatest(path_hash, match_hash) = %s"
        " AND ((path = %s AND n.match = %s) OR (path = %s AND n.match = %s)))"
        " OR EXISTS (SELECT 1 FROM notices n WHERE grp = %s"
        " AND ((path = %s AND path_hash = %s) OR (n.match = %s AND match_hash = %s)))")


def _notice(row: DictRow) -> Notice:
    geometry = None if row["geometry"] is None else json.loads(row["geometry"])
    return Notice(int(row["id"]), row["found_at"],
                  Match(row["path"], row["match"], row["kind"], row["method"], row["score"], row["distance"],
                        row["transform"], geometry, row["turned"], row["grp"], row["keep"]))
