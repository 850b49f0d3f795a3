"""Fixtures: ``stores`` opens stores of one fresh database, once per backend (SQLite
in tmp_path; PostgreSQL in the session's private cluster, ``pg_cluster`` in
tests/conftest.py), and closes them all afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio

from aiodimse.store import Store, open_store

from .pg_cluster import PGCluster

OpenStore = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh database of each backend."""
    if request.param == "sqlite":
        return str(tmp_path_factory.mktemp("sqlite") / "aiodimse.sqlite3")
    cluster: PGCluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database()


@pytest_asyncio.fixture
async def stores(store_url: str) -> AsyncIterator[OpenStore]:
    """Opens a store on ``store_url`` per call (each as another worker or node would)."""
    opened: list[Store] = []

    def open_() -> Store:
        store = open_store(store_url)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.aclose()
