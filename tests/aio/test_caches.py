"""The cache switch reaches every registered cache, and the registry is documented."""

from __future__ import annotations

import dataclasses
import re
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
    "wire.codec.associate_rq", "wire.codec.contexts_ac", "dimse.commands.ui_elements",
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


async def _session(record: list[Any], echo: bool = True) -> list[object]:
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
                        ds_of(TransactionUID=f"1.2.3.{i}"), 1, STGCMT, STGCMT_INSTANCE))
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

