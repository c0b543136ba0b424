"""Fixtures for the records stores: the fixture store on every backend, and stores over it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from app.records.mapping import RecordsMapping
from app.records.sql_store import SqlRecordsStore
from tests.databases import mariadb_database, postgres_database
from tests.records import fixtures

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
    pytest.param("mariadb", marks=pytest.mark.mariadb, id="mariadb"),
]


def _seeded(url: str) -> str:
    asyncio.run(fixtures.seed(url))
    return url


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("records-fixture") / "records.db"
    return _seeded(f"sqlite:///{path}")


@pytest.fixture(scope="session")
def seeded_postgres() -> Iterator[str]:
    with postgres_database() as url:
        yield _seeded(url)


@pytest.fixture(scope="session")
def seeded_mariadb() -> Iterator[str]:
    with mariadb_database() as url:
        yield _seeded(url)


@pytest.fixture(params=BACKENDS)
def seeded_url(request: pytest.FixtureRequest) -> str:
    """The shared, read-only fixture store on each backend."""
    return str(request.getfixturevalue(f"seeded_{request.param}"))


@pytest.fixture(params=BACKENDS[1:])
def seeded_server(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(backend, url)`` of the shared fixture store on each database server."""
    return request.param, str(request.getfixturevalue(f"seeded_{request.param}"))


@pytest.fixture(params=BACKENDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fixture store of this test's own on each backend (for tests that break it)."""
    if request.param == "sqlite":
        yield _seeded(f"sqlite:///{tmp_path / 'records.db'}")
    elif request.param == "postgres":
        with postgres_database() as url:
            yield _seeded(url)
    else:
        with mariadb_database() as url:
            yield _seeded(url)


StoreFactory = Callable[..., SqlRecordsStore]


@pytest.fixture
async def open_store() -> AsyncIterator[StoreFactory]:
    """Make SQL stores that are closed when the test ends."""
    stores: list[SqlRecordsStore] = []

    def make(url: str, mapping: RecordsMapping | None = None, **kwargs: float) -> SqlRecordsStore:
        store = SqlRecordsStore(url, mapping or fixtures.mapping(), **kwargs)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.close()


@pytest.fixture
def closed_port() -> int:
    """A local TCP port with nothing listening on it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
