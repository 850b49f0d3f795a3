"""The server's slot bookkeeping on its own (server._Slots)."""

from __future__ import annotations

from typing import Any

from aiodimse.server import PENDING_GRACE, _Slots

from ._helpers import make_scp_ae


def test_displacing_the_last_pending_of_an_address_keeps_the_newcomer_tracked() -> None:
    ae = make_scp_ae()
    ae.maximum_pending_per_address = 1
    slots = _Slots()
    old: Any = object()
    new: Any = object()
    assert slots.connected(old, "10.0.0.1", ae, 0.0) == []
    assert slots.connected(new, "10.0.0.1", ae, PENDING_GRACE) == [old]  # displaced
    slots.ended(old)
    assert slots.pending_by_address == {"10.0.0.1": {new: PENDING_GRACE}}
    assert slots.admit(new, "10.0.0.1", "SCU", ae)  # its pending place is found and freed
    assert not slots.pending and not slots.pending_by_address and not slots.address_of
    slots.ended(new)
    assert not slots.held and not slots.by_address and not slots.by_ae


def test_per_address_and_per_ae_limits_count_from_when_they_are_set() -> None:
    ae = make_scp_ae()
    slots = _Slots()
    first: Any = object()
    second: Any = object()
    slots.connected(first, "10.0.0.1", ae, 0.0)
    assert slots.admit(first, "10.0.0.1", "SCU", ae)
    assert not slots.by_address and not slots.by_ae  # no such limit: nothing counted
    ae.maximum_associations_per_address = 1
    ae.maximum_associations_per_ae = 1
    slots.connected(second, "10.0.0.1", ae, 1.0)
    assert slots.admit(second, "10.0.0.1", "SCU", ae)  # the first is not counted
    assert slots.by_address == {"10.0.0.1": 1} and slots.by_ae == {"SCU": 1}
    third: Any = object()
    slots.connected(third, "10.0.0.1", ae, 2.0)
    assert not slots.admit(third, "10.0.0.1", "SCU", ae)  # the second is
    slots.ended(first)
    slots.ended(second)
    slots.ended(third)
    assert not slots.held and not slots.by_address and not slots.by_ae
    assert not slots.pending and not slots.address_of
