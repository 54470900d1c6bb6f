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
    # 2: the notices outbox. A notice is written in the transaction that records its pair, so
    # the cache and the notices never disagree, even after a kill; each sink remembers the last
    # notice it delivered, and what lies past that is pending. A notice outlives its files (it
    # is what was said at the time). AUTOINCREMENT: ids are never reused, even after the newest
    # row is deleted, so a sink's position can never skip a notice. Pairs found before this
    # step were reported already: they get no notice.
    """
    CREATE TABLE notices (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        found_at  REAL    NOT NULL,
        path      TEXT    NOT NULL,
        match     TEXT    NOT NULL,
        kind      TEXT    NOT NULL,
        method    TEXT    NOT NULL,
        score     REAL    NOT NULL,
        distance  INTEGER NOT NULL,
        transform TEXT
    );
    CREATE TABLE sink_positions (
        sink      TEXT    PRIMARY KEY,
        delivered INTEGER NOT NULL  -- the last notice id this sink has delivered
    ) WITHOUT ROWID;
    """,
    # 3: the review page. A notice names its two files by id (ids survive renames and moves) and
    # by content hash at the time, so that a file whose content changed since is not shown as
    # the one the notice was about. "Not a duplicate" is a decision about two contents, not two
    # paths: it holds through renames, moves, copies and restarts. "Seen" is about one notice.
    """
    ALTER TABLE notices ADD COLUMN file_id    INTEGER;
    ALTER TABLE notices ADD COLUMN match_id   INTEGER;
    ALTER TABLE notices ADD COLUMN path_hash  BLOB;
    ALTER TABLE notices ADD COLUMN match_hash BLOB;
    ALTER TABLE notices ADD COLUMN geometry   TEXT;  -- JSON: what a geometric check found
    ALTER TABLE notices ADD COLUMN seen_at    REAL;  -- acknowledged on the review page
    UPDATE notices SET
        file_id    = (SELECT id FROM files WHERE files.path = notices.path),
        match_id   = (SELECT id FROM files WHERE files.path = notices.match),
        path_hash  = (SELECT content_hash FROM files WHERE files.path = notices.path),
        match_hash = (SELECT content_hash FROM files WHERE files.path = notices.match);
    CREATE TABLE not_duplicates (
        low        BLOB NOT NULL,  -- the two content hashes, the lower first
        high       BLOB NOT NULL,
        decided_at REAL NOT NULL,
        PRIMARY KEY (low, high)
    ) WITHOUT ROWID;
    CREATE INDEX not_duplicates_high ON not_duplicates (high);
    """,
    # 4: photos turned onto a canvas are turned back before they are fingerprinted; how far, so
    # that a notice can say how one of a pair was turned from the other.
    """
    ALTER TABLE files ADD COLUMN turned REAL NOT NULL DEFAULT 0;
    ALTER TABLE notices ADD COLUMN turned REAL;
    """,
    # 5: files that killed a decoding process, so that the next start does not try them again
    # (a crash loop under a service manager) until they change.
    """
    CREATE TABLE troubles (
        path     TEXT    PRIMARY KEY,
        size     INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        reason   TEXT    NOT NULL,
        found_at REAL    NOT NULL
    );
    """,
    # 6: fingerprints by size. A hash (8 bytes) goes in `hashes`, keyed by method first, so that
    # loading every hash of a method at the start reads one run of pages and nothing else. The
    # rest (a 1 KB pixel grid, an embedding) goes in a rowid table, whose rows keep up to about a
    # page inline: in the old WITHOUT ROWID table each 1 KB grid spilled onto an overflow page
    # of its own, three quarters of it empty.
    """
    CREATE TABLE hashes (
        method  TEXT    NOT NULL,
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        data    BLOB    NOT NULL,
        PRIMARY KEY (method, file_id)
    ) WITHOUT ROWID;
    CREATE INDEX hashes_file ON hashes (file_id);
    CREATE TABLE grids (
        file_id INTEGER NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        method  TEXT    NOT NULL,
        data    BLOB    NOT NULL,
        UNIQUE (file_id, method)
    );
    CREATE INDEX grids_method ON grids (method, file_id);
    INSERT INTO hashes (method, file_id, data)
        SELECT method, file_id, data FROM fingerprints WHERE length(data) <= 16;
    INSERT INTO grids (file_id, method, data)
        SELECT file_id, method, data FROM fingerprints WHERE length(data) > 16;
    DROP TABLE fingerprints;
    """,
    # 7: groups. Every file found to duplicate another belongs to one group, the copies of one
    # photo; the group names its keeper (the best copy) and the copy the user chose, if any. A
    # file's format and metadata, read from its header when it joins a group, rank its copies.
    # A notice names the group and its keeper as they were when it was found.
    """
    CREATE TABLE groups (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        keeper_id  INTEGER,
        chosen_id  INTEGER,
        created_at REAL NOT NULL
    );
    ALTER TABLE files ADD COLUMN grp    INTEGER;  -- groups.id; a group is dropped by its last member
    ALTER TABLE files ADD COLUMN format TEXT;
    ALTER TABLE files ADD COLUMN meta   INTEGER;
    CREATE INDEX files_group ON files (grp) WHERE grp IS NOT NULL;
    ALTER TABLE notices ADD COLUMN grp  INTEGER;
    ALTER TABLE notices ADD COLUMN keep TEXT;
    -- A pair of contents is told once, whatever became of its files since (forgotten, indexed again).
    CREATE INDEX notices_hashes ON notices (min(path_hash, match_hash), max(path_hash, match_hash));
    CREATE INDEX notices_group ON notices (grp) WHERE grp IS NOT NULL;
    """,
    # 8: a stamp of the stored hashes, so that an index of them saved beside the cache can be
    # trusted without reading a row: the token is this cache's own (a cache deleted and made
    # again starts a new count), and every change to a hash, by any writer, counts one up. Safe
    # to run again (a cache taken back to an older schema by hand): it takes a new token then.
    """
    CREATE TABLE IF NOT EXISTS hash_stamp (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        token   BLOB    NOT NULL,
        changes INTEGER NOT NULL
    );
    INSERT OR REPLACE INTO hash_stamp (id, token, changes) VALUES (1, randomblob(16), 0);
    CREATE TRIGGER IF NOT EXISTS hashes_inserted AFTER INSERT ON hashes
        BEGIN UPDATE hash_stamp SET changes = changes + 1; END;
    CREATE TRIGGER IF NOT EXISTS hashes_updated AFTER UPDATE ON hashes
        BEGIN UPDATE hash_stamp SET changes = changes + 1; END;
    CREATE TRIGGER IF NOT EXISTS hashes_deleted AFTER DELETE ON hashes
        BEGIN UPDATE hash_stamp SET changes = changes + 1; END;
    """,
    # 9: a log of the files whose hashes or fingerprints were written or dropped, by any writer,
    # in commit order (writers take turns), so that a watcher follows what a scan beside it, or
    # the review page moving copies away, changes in the same cache (`changed_elsewhere`).
    """
    CREATE TABLE changes (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,
        file_id INTEGER NOT NULL
    );
    CREATE TRIGGER changes_hash_new AFTER INSERT ON hashes
        BEGIN INSERT INTO changes (file_id) VALUES (NEW.file_id); END;
    CREATE TRIGGER changes_hash_set AFTER UPDATE ON hashes
        BEGIN INSERT INTO changes (file_id) VALUES (NEW.file_id); END;
    CREATE TRIGGER changes_hash_gone AFTER DELETE ON hashes
        BEGIN INSERT INTO changes (file_id) VALUES (OLD.file_id); END;
    CREATE TRIGGER changes_grid_new AFTER INSERT ON grids
        BEGIN INSERT INTO changes (file_id) VALUES (NEW.file_id); END;
    CREATE TRIGGER changes_grid_set AFTER UPDATE ON grids
        BEGIN INSERT INTO changes (file_id) VALUES (NEW.file_id); END;
    """,
    # 10: a file's own pixels, its padding or canvas left out, for the keeper order: a copy
    # padded to a square is not a bigger photo. NULL for files indexed before: width × height.
    """
    ALTER TABLE files ADD COLUMN pixels INTEGER;
    """,
    # 11: with what camera and when a file was taken (`shots.stamp`): two shots one camera took
    # at different moments are never duplicates. NULL for files indexed before: not known.
    """
    ALTER TABLE files ADD COLUMN taken TEXT;
    """,
]
