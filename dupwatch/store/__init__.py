"""The cache: what dupwatch knows about every file it has seen, behind a few small roles.

`open_store` is the one place a store is made: every command, the service, the review page and
the sinks' own connections open theirs through it, so that the config alone says which store.
"""

from __future__ import annotations

from dupwatch.config import CacheConfig
from dupwatch.store.base import Catalog, Decisions, Known, Outbox, Review, Store
from dupwatch.store.sqlite import SqliteStore

__all__ = ["Catalog", "Decisions", "Known", "Outbox", "Review", "Store", "open_store"]


def open_store(cache: CacheConfig) -> Store:
    """A new connection to the cache that `cache` (the config's section) names."""
    return SqliteStore(cache.resolved())
