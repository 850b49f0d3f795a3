"""Session fixtures shared by several test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import settings

from .examples import examples
from .store.pg_cluster import PGCluster, pg_bindir

# property tests that name no count of their own draw hypothesis's 100, scaled alike
settings.register_profile("aiodimse", max_examples=examples(100))
settings.load_profile("aiodimse")

NO_POSTGRESQL = ("PostgreSQL is not installed (no initdb and pg_ctl from pg_config --bindir "
                 "or in /usr/lib/postgresql/*/bin; tests/run.sh installs it as root)")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PGCluster]:
    """A private PostgreSQL cluster for the session (``new_database`` per test);
    skipped only where PostgreSQL's server programs are not installed."""
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip(NO_POSTGRESQL)
    cluster = PGCluster(bindir)
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.stop()
