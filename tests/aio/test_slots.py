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
