"""The cache switch reaches every registered cache, and the registry is documented."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aiodimse
import aiodimse.cli.main
import aiodimse.scu
from aiodimse import caches, evt
from aiodimse.dimse import NActionRQ, commands
from aiodimse.requests import kind_for_type, set_kind

from ._helpers import STGCMT, STGCMT_INSTANCE, bounded, ds_of, make_scu_ae, serving

DOC = Path(__file__).resolve().parents[2] / "docs" / "internals.md"

# What one short session below fills when caches are on (the probes must see them).
FILLED = {
    "wire.codec.associate_rq", "dimse.commands.ui_elements",
    "dimse.commands.shapes", "dimse.memo.responses", "scu.templates", "requests.uids",
    "fastds.tags", "fastds.keywords", "fastds.encoder.ui_elements", "outcome.bare",
    "server.negotiations", "server.answers", "association.bare_status",
    "dimse.commands.last_shape", "dimse.memo.last_response",
}


@pytest.fixture
def switch() -> Iterator[None]:
    """Leave the switch as the run set it (tests/run.sh runs these with caches off)."""
    was = caches.enabled
    yield
    if was:
        caches.enable()
    else:
        caches.disable()


def test_every_registered_cache_is_in_the_inventory() -> None:
    text = DOC.read_text()
    inventory = text[text.index("## Caches"):]
    named = set(re.findall(r"^- `([a-z_.]+)`", inventory, re.MULTILINE))
    assert set(caches.registry()) == named  # both ways: no stale entry in the doc either


async def _session(record: list[Any], echo: bool = True, tag: str = "1.2.3") -> list[object]:
    """Associate, send N-ACTIONs (with data), a C-ECHO and N-EVENT-REPORT; the answers.

    The caches are probed while the association is up (``record`` gets the
    server's side of it, from the handler).
    """
    def action(event: Any) -> tuple[int, None]:
        record.append(event.assoc)
        return 0, None

    statuses: list[object] = []
    async with serving([(evt.EVT_N_ACTION, action)]) as server:
        scu = make_scu_ae()
        for _ in range(2):
            async with scu.associate("127.0.0.1", server.port, ae_title="TEST_SCP") as assoc:
                for i in range(3):
                    status, reply = await bounded(assoc.send_n_action(
                        ds_of(TransactionUID=f"{tag}.{i}"), 1, STGCMT, STGCMT_INSTANCE))
                    statuses.append((status.Status, status.AffectedSOPInstanceUID, reply))
                if echo:
                    statuses.append((await bounded(assoc.send_c_echo())).Status)
                statuses.append(sorted(caches.sizes(record[-1], "association").items()))
        statuses.append(sorted(caches.sizes(server, "server").items()))
    return statuses


async def test_with_caches_off_nothing_is_kept_and_nothing_changes(switch: None) -> None:
    caches.enable()
    record: list[Any] = []
    on = await _session(record)
    held = {**caches.sizes(), **caches.sizes(record[-1], "association")}
    assert {name for name, size in held.items() if size} >= FILLED - {
        "server.negotiations", "server.answers"}
    assert all(size for name, size in on[-1] if name in FILLED)  # type: ignore[union-attr]

    caches.disable()
    assert not any(caches.sizes().values())  # emptied by the switch
    off = await _session(record)
    assert not any(caches.sizes().values())
    assert not any(caches.sizes(record[-1], "association").values())
    assert not any(size for _name, size in off[-1])  # type: ignore[union-attr]
    assert not any(size for _name, size in off[4])  # type: ignore[union-attr]
    # The same answers both ways (the cache sizes aside).
    assert [s for s in on if not isinstance(s, list)] == [s for s in off if not isinstance(s, list)]


def test_the_registry_lists_each_scope() -> None:
    scopes = {info.scope for info in caches.registry().values()}
    assert scopes == {"module", "server", "association"}
    assert aiodimse.scu and aiodimse.cli.main  # imported: their caches are registered


async def test_a_request_kind_can_opt_out_of_shapes_and_response_reuse(switch: None) -> None:
    caches.enable()
    kind = kind_for_type(NActionRQ)
    assert kind is not None and kind.shapes
    commands._SHAPES.clear()
    set_kind(NActionRQ, dataclasses.replace(kind, shapes=False))
    try:
        record: list[Any] = []
        answers = await _session(record, echo=False)
        sizes = caches.sizes(record[-1], "association")
        assert sizes["dimse.commands.last_shape"] == 0
        assert sizes["dimse.memo.last_response"] == 0
        shared = [shape[3] for known in commands._SHAPES.values() for shape in known]
        assert not any(type(message) is NActionRQ for message in shared)
        assert [a[0] for a in answers if isinstance(a, tuple)] == [0] * 6
    finally:
        set_kind(NActionRQ, kind)
    assert kind_for_type(NActionRQ) is kind


async def test_opting_out_drops_the_shapes_already_shared(switch: None) -> None:
    caches.enable()
    await _session([])
    shared = [shape[3] for known in commands._SHAPES.values() for shape in known]
    assert any(type(message) is NActionRQ for message in shared)
    commands.forgo_shapes(NActionRQ)
    try:
        shared = [shape[3] for known in commands._SHAPES.values() for shape in known]
        assert not any(type(message) is NActionRQ for message in shared)
    finally:
        commands.forgo_shapes(NActionRQ, False)



def _module_tables() -> dict[str, int]:
    """Every container the library's modules hold, and what it holds.

    Module globals that are dicts, lists or sets (and the containers they hold),
    lru_caches, and the containers in the attributes of module-level objects of the
    library's own classes (``fastds.encoder._IMPLICIT.ui_cache``, say).
    """
    for info in pkgutil.walk_packages(aiodimse.__path__, "aiodimse."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found: dict[str, int] = {}

    def add(name: str, value: object) -> None:
        if isinstance(value, functools._lru_cache_wrapper):
            found[name] = value.cache_info().currsize
        elif type(value) in (dict, list, set):
            held: Any = value
            members = held.values() if type(held) is dict else held
            found[name] = len(held) + sum(
                len(v) for v in members if type(v) in (dict, list, set))

    for module_name, module in list(sys.modules.items()):
        if module_name.split(".")[0] != "aiodimse" or module is None:
            continue
        for attr, value in list(vars(module).items()):
            name = f"{module_name}.{attr}"
            add(name, value)
            if type(value).__module__.startswith("aiodimse."):
                slots = getattr(type(value), "__slots__", ())
                slots = [slots] if type(slots) is str else slots
                names = [*getattr(value, "__dict__", {}), *slots]
                for member in names:
                    add(f"{name}.{member}", getattr(value, member, None))
    return found


# Tables built once from code, keyed by types and probes, never by a request's values
# (docs/internals.md, "Not caches"): they fill on first use whatever the switch says.
BUILT_ONCE = {
    "aiodimse.aio.protocol._TRAITS",  # per event loop class
    "aiodimse.compat._MAKERS",  # per pydicom class: may it be made without __init__
    "aiodimse.compat._layout",  # the pydicom layout probe
    "aiodimse.fastds._proto._by_stores",  # the DataElement layout probe
    "aiodimse.fastds._proto._snapshot",  # Dataset()'s members
    "aiodimse.requests._STATUS_BUILDERS",  # generated code per response class
}


async def test_with_caches_off_no_module_table_grows(switch: None) -> None:
    """A cache the registry does not know keeps filling when the switch is off: found here.

    From before a first session to after a second one with other values, no module
    table may grow but the ones built once from code.
    """
    caches.disable()
    before = _module_tables()
    await _session([], tag="1.2.4")
    await _session([], tag="1.2.5")
    after = _module_tables()
    grown = {name: (before.get(name, 0), size) for name, size in after.items()
             if size > before.get(name, 0) and name not in BUILT_ONCE}
    assert grown == {}
    assert set(after) >= BUILT_ONCE  # no stale name


async def test_the_table_probe_sees_the_registered_caches(switch: None) -> None:
    """The probe above is not blind: with caches on, the module caches it sees grow."""
    caches.disable()  # empties them
    caches.enable()
    before = _module_tables()
    await _session([], tag="1.2.6")
    after = _module_tables()
    grown = {name for name, size in after.items() if size > before.get(name, 0)}
    assert {"aiodimse.dimse.memo._SHARED", "aiodimse.requests._UIDS",
            "aiodimse.fastds.encoder._IMPLICIT.ui_cache", "aiodimse.scu._TEMPLATES",
            "aiodimse.wire.codec._RQ_DECODED", "aiodimse.dimse.commands._UI_TABLES"} <= grown


def test_the_environment_starts_with_caches_off() -> None:
    code = "import aiodimse.caches as c; print(c.enabled)"
    for value, shown in (("0", "False"), ("1", "True")):
        env = {**os.environ, "AIODIMSE_CACHES": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True, timeout=60)
        assert out.stdout.strip() == shown


async def test_a_request_kind_can_opt_out_of_response_reuse_alone(switch: None) -> None:
    caches.enable()
    kind = kind_for_type(NActionRQ)
    assert kind is not None and kind.reusable
    set_kind(NActionRQ, dataclasses.replace(kind, reusable=False))
    try:
        record: list[Any] = []
        answers = await _session(record, echo=False)
        sizes = caches.sizes(record[-1], "association")
        assert sizes["dimse.commands.last_shape"] == 1  # shapes still shared
        assert sizes["dimse.memo.last_response"] == 0  # every response built anew
        assert [a[0] for a in answers if isinstance(a, tuple)] == [0] * 6
    finally:
        set_kind(NActionRQ, kind)
