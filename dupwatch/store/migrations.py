"""The SQLite schema, as ordered steps. `PRAGMA user_version` is the number of steps applied.

Never edit a step once released: add a new one. Each runs in one transaction.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: files, their fingerprints by method key, and the duplicate pairs found.
    """
    CREATE TABLE files (
        id           INTEGER PRIMARY KEY,
        path         TEXT    NOT NULL UNIQUE,
        size         INTEGER NOT NULL,
        mtime_ns     INTEGER NOT NULL,
        dev          INTEGER NOT NULL,
        ino          INTEGER NOT NULL,
        content_hash BLOB    NOT NULL,
        width        INTEGER NOT NULL,
        height       INTEGER NOT NULL,
        plan         TEXT    NOT NULL,
        indexed_at   REAL    NOT NULL
    );
    CREATE INDEX files_content_hash ON files (content_hash);
    CREATE INDEX files_inode ON files (dev, ino);

    -- One row per file and method key ("hash/1", "cosine/1", later "cnn/...").
    -- Embeddings of later methods are rows here too: no schema change to add a method.
    CREATE TABLE fingerprints (
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        method  TEXT    NOT NULL,
        data    BLOB    NOT NULL,
        PRIMARY KEY (file_id, method)
    ) WITHOUT ROWID;
    CREATE INDEX fingerprints_method ON fingerprints (method);

    CREATE TABLE pairs (
        id        INTEGER PRIMARY KEY,
        file_id   INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        match_id  INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        kind      TEXT    NOT NULL CHECK (kind IN ('exact', 'near')),
        method    TEXT    NOT NULL,
        score     REAL    NOT NULL,
        distance  INTEGER NOT NULL,
        found_at  REAL    NOT NULL,
        UNIQUE (file_id, match_id)
    );
    CREATE INDEX pairs_match ON pairs (match_id);
    """,
]
