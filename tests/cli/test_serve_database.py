"""The ``database`` setting: where ``serve`` and ``index`` keep their store, by URL.

``sqlite:///PATH`` or a path (relative ones in a TOML file from the file's folder);
without it, the SQLite file in ``--data``; a scheme no backend has is a usage error
(exit 64, one line) before anything starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE
from aiodimse.cli.config import ConfigError
from aiodimse.services import MPPS
from aiodimse.store import DB_FILENAME, open_store, postgresql

from ._config import serve_config as _config
from ._serve import write_instance
from .conftest import StartServe


def test_the_database_key_and_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _config("--data", "d").database_url() == str(Path("d") / DB_FILENAME)
    assert _config("--database", "sqlite:///x.db").database_url() == "sqlite:///x.db"
    etc = tmp_path / "etc"
    etc.mkdir()
    monkeypatch.chdir(tmp_path)
    path = etc / "serve.toml"
    for value, url in (("store/db.sqlite3", str(etc / "store" / "db.sqlite3")),
                       ("sqlite:///rel.db", f"sqlite:///{etc / 'rel.db'}"),
                       ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
                       ("/abs/y.db", "/abs/y.db")):
        path.write_text(f'[server]\ndatabase = "{value}"\n')
        assert _config("--config", str(path)).database_url() == url
    flag = _config("--config", str(path), "--database", "here.db")  # the flag wins
    assert flag.database_url() == "here.db"


@pytest.mark.parametrize("argv", [["--database", "mssql://db/aiodimse"],
                                  ["--database", "MYSQL://x"]])
def test_an_unknown_scheme_is_a_usage_error(argv: list[str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="database: unknown database scheme"):
        _config(*argv)
    proc = subprocess.run(
        [sys.executable, "-m", "aiodimse", "serve", "--data", str(tmp_path / "d"), *argv],
        capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 64
    assert proc.stderr.count("\n") == 1 and "unknown database scheme" in proc.stderr
    assert not (tmp_path / "d").exists()
    index = subprocess.run(
        [sys.executable, "-m", "aiodimse", "index", *argv, str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False)
    assert index.returncode == 64 and "unknown database scheme" in index.stderr


def test_a_backend_refuses_only_the_services_needing_what_it_lacks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL lacks nothing now: serve on it runs every service. A backend
    lacking a concern (the UPS workitems or the archive index, as PostgreSQL did)
    makes the services needing it a usage error naming them; with them off it goes
    on."""
    url = "postgresql://nobody@127.0.0.1:9/none"
    assert postgresql.LACKING == ()
    assert {"ups", "storage", "query_retrieve"} <= set(_config("--database", url).services)
    monkeypatch.setattr(postgresql, "LACKING", ("ups workitems",))
    with pytest.raises(ConfigError, match="no ups workitems yet, which the ups service needs"):
        _config("--database", url)
    config = _config("--database", url, "--disable-service", "ups")
    assert {"storage", "query_retrieve"} <= set(config.services)
    monkeypatch.setattr(postgresql, "LACKING", ("archive index",))
    with pytest.raises(ConfigError, match="no archive index yet, which the storage and "
                                          "query_retrieve services need"):
        _config("--database", url)
    with pytest.raises(ConfigError, match="which the query_retrieve service needs: disable it"):
        _config("--database", url, "--disable-service", "storage")
    config = _config("--database", url, "--disable-service", "storage",
                     "--disable-service", "query_retrieve")
    assert "storage" not in config.services and config.database_url() == url
    monkeypatch.setattr(postgresql, "LACKING", ("something unheard of",))
    assert _config("--database", url).database_url() == url  # needed by no service


async def test_serve_and_index_use_the_configured_database(
    serve: StartServe, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "db" / "store.sqlite3"
    url = f"sqlite:///{elsewhere}"
    uid = write_instance(tmp_path / "archive")
    index = subprocess.run(
        [sys.executable, "-m", "aiodimse", "index", "--database", url, "--create",
         str(tmp_path / "archive")], capture_output=True, text=True, timeout=60, check=False)
    assert index.returncode == 0, index.stderr
    srv = await serve("--database", url).ready()
    ae = AE("CT1")
    ae.add_requested_context(MPPS)
    attrs = Dataset()
    attrs.PerformedProcedureStepStatus = "IN PROGRESS"
    step = str(generate_uid())
    async with ae.associate("127.0.0.1", srv.port, ae_title="ANY") as assoc:
        status, _ = await assoc.send_n_create(attrs, MPPS, step)
    assert status.Status == 0
    assert srv.stop() == 0
    assert not (tmp_path / "data" / DB_FILENAME).exists()
    store = open_store(url, create=False)
    try:
        assert await store.find_instances([uid]) == {uid: "1.2.840.10008.5.1.4.1.1.2"}
        row = await store.mpps_get(step)
        assert row is not None and row.calling_aet == "CT1"
    finally:
        await store.aclose()
