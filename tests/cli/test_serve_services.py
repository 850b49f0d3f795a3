"""``aiodimse serve`` composes the services its configuration enables."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from aiodimse import AE
from aiodimse.archive import MODELS
from aiodimse.cli.config import SERVICES, ConfigError
from aiodimse.cli.serve import build_services
from aiodimse.presentation import build_role
from aiodimse.services import MPPS, STORAGE_COMMITMENT
from aiodimse.services.storage import STORAGE_CLASSES
from aiodimse.services.ups import UPS_PULL, UPS_PUSH, UPS_QUERY, UPS_WATCH
from aiodimse.store.sqlite import SQLiteStore

from ._config import serve_config as _config
from .conftest import StartServe

VERIFICATION = "1.2.840.10008.1.1"


def test_every_service_runs_by_default() -> None:
    assert _config().services == SERVICES == ("verification", "storage_commitment", "mpps",
                                              "storage", "query_retrieve", "ups")


def test_the_file_disables_and_flags_decide_last(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text("[services]\nmpps = false\nverification = true\nstorage = false\n"
                    "query_retrieve = false\nups = false\n")
    assert _config("--config", str(path)).services == ("verification", "storage_commitment")
    assert _config("--config", str(path), "--enable-service", "mpps", "--enable-service",
                   "storage", "--enable-service", "query_retrieve", "--enable-service",
                   "ups").services == SERVICES
    assert _config("--config", str(path), "--disable-service", "storage_commitment",
                   "--disable-service", "verification").services == ()
    assert _config("--disable-service", "mpps").services == (
        "verification", "storage_commitment", "storage", "query_retrieve", "ups")


@pytest.mark.parametrize(("text", "message"), [
    ("[services]\nprint = true\n", "unknown service 'print'"),
    ("[services]\nmpps = 'no'\n", "mpps must be true or false"),
    ("services = 1\n", r"\[services\] must be a table"),
])
def test_bad_services_table(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "serve.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        _config("--config", str(path))


def test_a_service_both_enabled_and_disabled_is_a_usage_error() -> None:
    with pytest.raises(ConfigError, match="both enabled and disabled: mpps"):
        _config("--enable-service", "mpps", "--disable-service", "mpps")
    with pytest.raises(SystemExit):  # argparse: not a service serve knows
        _config("--disable-service", "print")


async def test_serve_builds_the_enabled_services_only(tmp_path: Path) -> None:
    store = SQLiteStore.in_directory(tmp_path)
    try:
        every = build_services(_config(), store)
        # ``ups`` is two Service objects, the workitems and their Watch half
        assert [s.name for s in every.services] == [*SERVICES, "ups-watch"]
        assert set(every.sop_classes()) == {VERIFICATION, STORAGE_COMMITMENT, MPPS,
                                            *STORAGE_CLASSES, *MODELS, UPS_PUSH, UPS_PULL,
                                            UPS_WATCH, UPS_QUERY}
        some = build_services(_config("--disable-service", "storage_commitment",
                                      "--disable-service", "storage", "--disable-service",
                                      "query_retrieve", "--disable-service", "ups"), store)
        assert [s.name for s in some.services] == ["verification", "mpps"]
        assert set(some.sop_classes()) == {VERIFICATION, MPPS}
    finally:
        await store.aclose()


async def test_a_disabled_service_is_not_served_by_the_process(serve: StartServe) -> None:
    """The real ``aiodimse serve``: the disabled service's context is rejected, the
    enabled ones answer, and the startup line names the services that run."""
    srv = await serve("--disable-service", "mpps", "--disable-service", "storage",
                      "--disable-service", "query_retrieve",
                      "--disable-service", "ups").ready()
    assert "services: verification, storage_commitment)" in srv.log()
    scu = AE("MODALITY")
    for uid in (VERIFICATION, STORAGE_COMMITMENT, MPPS):
        scu.add_requested_context(uid)
    async with scu.associate("127.0.0.1", srv.port, ae_title="AIODIMSE") as assoc:
        accepted = {c.abstract_syntax for c in assoc.accepted_contexts}
        assert accepted == {VERIFICATION, STORAGE_COMMITMENT}
        assert [uid for _, uid, _ in assoc.rejected_contexts] == [MPPS]
        assert (await asyncio.wait_for(assoc.send_c_echo(), 10)).Status == 0x0000


async def test_storage_off_refuses_plain_storage_contexts_but_not_c_get(serve: StartServe) -> None:
    """Query/Retrieve on, storage off: a storage context in the default roles (the
    peer would send us C-STOREs nobody serves) is rejected up front, while the same
    class proposed with the peer as its SCP (a C-GET requestor's) is accepted."""
    srv = await serve("--disable-service", "storage").ready()
    ct = "1.2.840.10008.5.1.4.1.1.2"
    assert ct in STORAGE_CLASSES
    plain = AE("MODALITY")
    plain.add_requested_context(ct)
    plain.add_requested_context(VERIFICATION)
    async with plain.associate("127.0.0.1", srv.port, ae_title="AIODIMSE") as assoc:
        assert [uid for _, uid, _ in assoc.rejected_contexts] == [ct]
        assert {c.abstract_syntax for c in assoc.accepted_contexts} == {VERIFICATION}
    study_get = "1.2.840.10008.5.1.4.1.2.2.3"
    assert MODELS[study_get].operation == "GET"
    getter = AE("GETTER")
    getter.add_requested_context(study_get)
    getter.add_requested_context(ct)
    async with getter.associate("127.0.0.1", srv.port, ae_title="AIODIMSE",
                                ext_neg=[build_role(ct, scp_role=True)]) as assoc:
        assert assoc.rejected_contexts == []
        assert {c.abstract_syntax for c in assoc.accepted_contexts} == {study_get, ct}
