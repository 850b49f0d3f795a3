"""pynetdicom as the UPS SCU against ``aiodimse serve``: a pusher on the Push class,
a performer that proposes Pull alone (pynetdicom then sends the Push UID on the
Pull context, CC.3.1), and a watcher's N-GET and C-FIND on Watch."""

from __future__ import annotations

import pynetdicom
from pydicom.dataset import Dataset

from aiodimse.services.ups import UPS_PULL, UPS_PUSH, UPS_QUERY, UPS_WATCH

from ..interop.test_pynetdicom import _pn_ae, in_thread
from ..services._ups import completion, workitem
from .conftest import StartServe


def _state(state: str, lock: str) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = state
    ds.TransactionUID = lock
    return ds


async def test_pynetdicom_pushes_claims_and_completes_on_serve(serve: StartServe) -> None:
    srv = await serve().ready()

    async def associate(*contexts: str) -> pynetdicom.association.Association:
        assoc = await in_thread(_pn_ae("PN_UPS", requested=contexts).associate,
                                "127.0.0.1", srv.port, ae_title="AIODIMSE")
        assert assoc.is_established
        return assoc

    pusher = await associate(UPS_PUSH)
    try:
        status, _ = await in_thread(pusher.send_n_create, workitem("PN1"), UPS_PUSH,
                                    "1.2.826.0.1.3680043.10.1451.9.1")
        assert status.Status == 0x0000
        status, _ = await in_thread(pusher.send_n_create, workitem("PN2"), UPS_PUSH,
                                    "1.2.826.0.1.3680043.10.1451.9.2")
        assert status.Status == 0x0000
    finally:
        await in_thread(pusher.release)

    uid, lock = "1.2.826.0.1.3680043.10.1451.9.1", "1.2.826.0.1.3680043.10.1451.9.99"
    performer = await associate(UPS_PULL)
    try:
        query = Dataset()
        query.PatientID = "PN1"
        query.SOPInstanceUID = ""
        found = await in_thread(lambda: list(performer.send_c_find(query, UPS_PULL)))
        assert [s.Status for s, _ in found] == [0xFF00, 0x0000]
        assert found[0][1].SOPInstanceUID == uid
        status, _ = await in_thread(performer.send_n_action, _state("IN PROGRESS", lock), 1,
                                    UPS_PUSH, uid)
        assert status.Status == 0x0000
        mods = completion()
        mods.TransactionUID = "1.2.3"  # not the lock
        status, _ = await in_thread(performer.send_n_set, mods, UPS_PUSH, uid)
        assert status.Status == 0xC301
        mods.TransactionUID = lock
        status, _ = await in_thread(performer.send_n_set, mods, UPS_PUSH, uid)
        assert status.Status == 0x0000
        status, _ = await in_thread(performer.send_n_action, _state("COMPLETED", lock), 1,
                                    UPS_PUSH, uid)
        assert status.Status == 0x0000
    finally:
        await in_thread(performer.release)

    watcher = await associate(UPS_WATCH, UPS_QUERY)
    try:
        status, got = await in_thread(watcher.send_n_get, [0x00741000], UPS_PUSH, uid)
        assert status.Status == 0x0000 and got.ProcedureStepState == "COMPLETED"
        query = Dataset()
        query.ProcedureStepState = "SCHEDULED"
        query.PatientID = ""
        found = await in_thread(lambda: list(watcher.send_c_find(query, UPS_QUERY)))
        assert [i.PatientID for s, i in found if s.Status == 0xFF00] == ["PN2"]
    finally:
        await in_thread(watcher.release)
