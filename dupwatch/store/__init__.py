"""The cache: what dupwatch knows about every file it has seen, behind a few small roles.

`open_store` is the one place a store is made: every command, the service, the review page and
the sinks' own connections open theirs through it, so that the config alone says which store.
"""

from __future__ import annotations

from dupwatch.config import CacheConfig
from dupwatch.errors import DupwatchError
from dupwatch.extras import install
from dupwatch.store.base import Catalog, Decisions, Known, Outbox, Review, Store
from dupwatch.store.sqlite import SqliteStore

__all__ = ["Catalog", "Decisions", "Known", "Outbox", "Review", "Store", "open_store"]


def open_store(cache: CacheConfig) -> Store:
    """A new connection to the cache that `cache` (the config's section) names: the PostgreSQL
    database at `cache.url` when it is set, else the SQLite file at `cache.path`."""
    if cache.url is None:
        return SqliteStore(cache.resolved())
    try:
        # Only a URL needs psycopg: the default install does without it.
        from dupwatch.store.postgres import PostgresStore
    except ImportError as exc:
        raise DupwatchError(f"cache.url needs PostgreSQL support, which is not installed ({exc.name} is"
                            f" missing): {install('postgres')}"
                            ) from None
    return PostgresStore(cache.url, cache.host)
