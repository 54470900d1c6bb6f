"""The PostgreSQL schema, as ordered steps. `schema_version.version` is the number applied.

Never edit a step once released: add a new one. All steps a process applies run in one
transaction under an advisory lock, so two processes starting at once do not both migrate.

Several hosts share one database: a file is known by (host, path). Paths and notice paths are
`COLLATE "C"`: byte order, which `paths_under`'s range (and the review page's folder filter)
relies on, and which no locale's rules can change under an index.
"""

from __future__ import annotations

# Advisory lock keys (any bigint, unique to dupwatch within a database): "dupwatch" in ASCII.
MIGRATE_LOCK = 0x6475707761746368
# Held by a transaction from its first new notice until it commits: notice ids are then handed
# out in commit order, so a sink that has delivered notice n never finds a smaller id later.
NOTICES_LOCK = MIGRATE_LOCK + 1
# Held, for its session, by the one process of all hosts that delivers the notices.
DELIVERY_LOCK = MIGRATE_LOCK + 2
# Where step 4's triggers announce each file whose fingerprints were written.
ANNOUNCED = "dupwatch_fingerprints"

MIGRATIONS: list[str] = [
    # 1: everything the SQLite store holds after its fifth step, with a host on each file.
    """
    CREATE TABLE files (
        id           bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        host         text    COLLATE "C" NOT NULL,
        path         text    COLLATE "C" NOT NULL,
        size         bigint  NOT NULL,
        mtime_ns     bigint  NOT NULL,
        dev          numeric(20) NOT NULL,  -- st_dev and st_ino are unsigned 64-bit numbers
        ino          numeric(20) NOT NULL,
        content_hash bytea   NOT NULL,
        width        integer NOT NULL,
        height       integer NOT NULL,
        plan         text    NOT NULL,
        indexed_at   double precision NOT NULL,
        turned       double precision NOT NULL DEFAULT 0,
        UNIQUE (host, path)
    );
    CREATE INDEX files_content_hash ON files (content_hash);
    CREATE INDEX files_inode ON files (host, dev, ino);

    -- One row per file and method key ("hash/1", "cosine/1", "cnn/..."): no schema change to
    -- add a method.
    CREATE TABLE fingerprints (
        file_id bigint NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        method  text   NOT NULL,
        data    bytea  NOT NULL,
        PRIMARY KEY (file_id, method)
    );
    CREATE INDEX fingerprints_method ON fingerprints (method, file_id);

    -- A pair is known in either direction: the unique index on the ordered ids makes a second
    -- insert, from this host or another, a no-op.
    CREATE TABLE pairs (
        id        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        file_id   bigint  NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        match_id  bigint  NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        kind      text    NOT NULL CHECK (kind IN ('exact', 'near')),
        method    text    NOT NULL,
        score     double precision NOT NULL,
        distance  integer NOT NULL,
        found_at  double precision NOT NULL
    );
    CREATE UNIQUE INDEX pairs_either_way ON pairs ((least(file_id, match_id)), (greatest(file_id, match_id)));
    CREATE INDEX pairs_match ON pairs (match_id);
    CREATE INDEX pairs_file ON pairs (file_id);

    -- The notices outbox: written in the transaction that records its pair; identity ids are
    -- never reused. A notice outlives its files (it is what was said at the time).
    CREATE TABLE notices (
        id         bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        host       text    NOT NULL,  -- the host that found it
        found_at   double precision NOT NULL,
        path       text    COLLATE "C" NOT NULL,
        match      text    COLLATE "C" NOT NULL,
        kind       text    NOT NULL,
        method     text    NOT NULL,
        score      double precision NOT NULL,
        distance   integer NOT NULL,
        transform  text,
        geometry   text,  -- JSON: what a geometric check found
        turned     double precision,
        file_id    bigint,
        match_id   bigint,
        path_hash  bytea,
        match_hash bytea,
        seen_at    double precision  -- acknowledged on the review page
    );
    CREATE INDEX notices_hashes ON notices
        ((least(path_hash, match_hash)), (greatest(path_hash, match_hash)));

    CREATE TABLE sink_positions (
        sink      text   PRIMARY KEY,
        delivered bigint NOT NULL  -- the last notice id this sink has delivered
    );

    -- "Not a duplicate" is a decision about two contents, the lower hash first.
    CREATE TABLE not_duplicates (
        low        bytea NOT NULL,
        high       bytea NOT NULL,
        decided_at double precision NOT NULL,
        PRIMARY KEY (low, high)
    );
    CREATE INDEX not_duplicates_high ON not_duplicates (high);

    -- Files that killed a decoding process, per host.
    CREATE TABLE troubles (
        host     text    COLLATE "C" NOT NULL,
        path     text    COLLATE "C" NOT NULL,
        size     bigint  NOT NULL,
        mtime_ns bigint  NOT NULL,
        reason   text    NOT NULL,
        found_at double precision NOT NULL,
        PRIMARY KEY (host, path)
    );
    """,
    # 2: groups, as the SQLite store's seventh step: the copies of one photo, their keeper and
    # the copy the user chose; a file's format and metadata; a notice's group and keeper.
    """
    CREATE TABLE groups (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        keeper_id  bigint,
        chosen_id  bigint,
        created_at double precision NOT NULL
    );
    ALTER TABLE files ADD COLUMN grp    bigint REFERENCES groups (id) ON DELETE SET NULL;
    ALTER TABLE files ADD COLUMN format text;
    ALTER TABLE files ADD COLUMN meta   integer;
    CREATE INDEX files_group ON files (grp) WHERE grp IS NOT NULL;
    ALTER TABLE notices ADD COLUMN grp  bigint;
    ALTER TABLE notices ADD COLUMN keep text;
    CREATE INDEX notices_group ON notices (grp) WHERE grp IS NOT NULL;
    """,
    # 3: the 64-bit hashes apart from the large fingerprints, as the SQLite store's sixth step:
    # among pixel grids and embeddings a million hashes lie on 150,000 pages, and every search
    # starts by reading them all. `fingerprints` keeps those over 16 bytes.
    """
    CREATE TABLE hashes (
        method  text   NOT NULL,
        file_id bigint NOT NULL REFERENCES files (id) ON DELETE CASCADE,
        data    bytea  NOT NULL,
        PRIMARY KEY (method, file_id)
    );
    CREATE INDEX hashes_file ON hashes (file_id);
    INSERT INTO hashes (method, file_id, data)
        SELECT method, file_id, data FROM fingerprints WHERE octet_length(data) <= 16;
    DELETE FROM fingerprints WHERE octet_length(data) <= 16;
    """,
    # 4: every file whose fingerprints are written is announced on a channel as its transaction
    # commits (NOTIFY is delivered at commit, in commit order): the other hosts' watchers add it
    # to their searches before they match their next photo.
    """
    CREATE FUNCTION dupwatch_announce() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('dupwatch_fingerprints', NEW.file_id::text);
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER hashes_announce AFTER INSERT OR UPDATE ON hashes
        FOR EACH ROW EXECUTE FUNCTION dupwatch_announce();
    CREATE TRIGGER fingerprints_announce AFTER INSERT OR UPDATE ON fingerprints
        FOR EACH ROW EXECUTE FUNCTION dupwatch_announce();
    """,
    # 5: a file forgotten (its hashes dropped with it) is announced too, so that the other
    # processes' searches let it go: a copy the review page moved into the quarantine is no
    # longer a candidate anywhere.
    """
    CREATE OR REPLACE FUNCTION dupwatch_announce() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('dupwatch_fingerprints',
                          (CASE WHEN TG_OP = 'DELETE' THEN OLD.file_id ELSE NEW.file_id END)::text);
        RETURN NULL;
    END
    $$;
    CREATE TRIGGER hashes_gone AFTER DELETE ON hashes
        FOR EACH ROW EXECUTE FUNCTION dupwatch_announce();
    """,
    # 6: a file's own pixels, its padding or canvas left out, for the keeper order: a copy
    # padded to a square is not a bigger photo. NULL for files indexed before: width × height.
    """
    ALTER TABLE files ADD COLUMN pixels bigint;
    """,
    # 7: with what camera and when a file was taken (`shots.stamp`): two shots one camera took
    # at different moments are never duplicates. NULL for files indexed before: not known.
    """
    ALTER TABLE files ADD COLUMN taken text;
    """,
]
