"""pynetdicom as the peer of the real ``aiodimse serve``: storage commitment and MPPS.

pynetdicom blocks, so its calls run in worker threads; its listening server runs
with ``block=False`` and is shut down in teardown.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pynetdicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse.services import MPPS
from aiodimse.services import STORAGE_COMMITMENT as STGCMT
from aiodimse.services import STORAGE_COMMITMENT_INSTANCE as STGCMT_INSTANCE

from ._serve import CT, free_port
from .conftest import StartServe

T = TypeVar("T")


async def in_thread(func: Callable[..., T], *args: Any, **kw: Any) -> T:
    return await asyncio.wait_for(asyncio.to_thread(func, *args, **kw), 20)


def _pn_ae(title: str) -> Any:
    ae = pynetdicom.AE(ae_title=title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    return ae


def _action(transaction_uid: str, refs: list[tuple[str, str]]) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    seq = []
    for cls, inst in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = cls
        item.ReferencedSOPInstanceUID = inst
        seq.append(item)
    ds.ReferencedSOPSequence = seq
    return ds


async def test_pynetdicom_commitment_report_on_same_association(serve: StartServe) -> None:
    srv = await serve("-aet", "ARCHIVE").ready()
    got: list[tuple[int, str, int]] = []
    arrived = threading.Event()

    def on_report(event: Any) -> tuple[int, None]:
        info = event.event_information
        got.append((event.event_type, info.TransactionUID,
                    int(info.FailedSOPSequence[0].FailureReason)))
        arrived.set()
        return 0x0000, None

    ae = _pn_ae("PN_MODALITY")
    ae.add_requested_context(STGCMT)
    assoc = await in_thread(ae.associate, "127.0.0.1", srv.port, ae_title="ARCHIVE",
                            evt_handlers=[(pynetdicom.evt.EVT_N_EVENT_REPORT, on_report)])
    assert assoc.is_established
    transaction = str(generate_uid())
    try:
        status, _ = await in_thread(assoc.send_n_action, _action(transaction, [(CT, "1.2.3")]),
                                    1, STGCMT, STGCMT_INSTANCE)
        assert status.Status == 0
        assert await in_thread(arrived.wait, 10)
    finally:
        await in_thread(assoc.release)
    assert got == [(2, transaction, 0x0112)]


async def test_pynetdicom_commitment_report_on_new_association(
    serve: StartServe, tmp_path: Path
) -> None:
    """pynetdicom releases at once; its listener accepts the SCP role we propose.

    ``same_association = false``: pynetdicom 3.0.4's requestor crashes its reactor
    thread when a P-DATA arrives while it waits for A-RELEASE-RP, a race this test
    would otherwise hit now and then.
    """
    back_port = free_port()
    config = tmp_path / "serve.toml"
    config.write_text("[commitment]\nsame_association = false\n")
    srv = await serve("-aet", "ARCHIVE", "--config", str(config),
                      "--peer", f"PN_MODALITY@127.0.0.1:{back_port}").ready()
    got: list[tuple[int, str, str]] = []
    arrived = threading.Event()

    def on_report(event: Any) -> tuple[int, None]:
        got.append((event.event_type, event.event_information.TransactionUID,
                    event.assoc.requestor.ae_title))
        arrived.set()
        return 0x0000, None

    receiver = _pn_ae("PN_MODALITY")
    receiver.add_supported_context(STGCMT, scu_role=True, scp_role=True)
    pn_server = receiver.start_server(("127.0.0.1", back_port), block=False,
                                      evt_handlers=[(pynetdicom.evt.EVT_N_EVENT_REPORT,
                                                     on_report)])
    try:
        ae = _pn_ae("PN_MODALITY")
        ae.add_requested_context(STGCMT)
        assoc = await in_thread(ae.associate, "127.0.0.1", srv.port, ae_title="ARCHIVE")
        assert assoc.is_established
        transaction = str(generate_uid())
        try:
            status, _ = await in_thread(assoc.send_n_action,
                                        _action(transaction, [(CT, "1.2.3")]), 1, STGCMT,
                                        STGCMT_INSTANCE)
        finally:
            await in_thread(assoc.release)
        assert status.Status == 0
        assert await in_thread(arrived.wait, 10)
    finally:
        await in_thread(pn_server.shutdown)
    assert got == [(2, transaction, "ARCHIVE")]


def _mpps_flow(port: int) -> dict[str, Any]:
    """pynetdicom's MPPS SCU: create, refuse, update, complete, refuse again, get."""
    ae = _pn_ae("PN_MODALITY")
    ae.add_requested_context(MPPS)
    assoc = ae.associate("127.0.0.1", port, ae_title="ARCHIVE")
    assert assoc.is_established
    out: dict[str, Any] = {}
    uid = str(generate_uid())
    try:
        bad = Dataset()
        bad.PerformedProcedureStepStatus = "COMPLETED"
        out["create_completed"] = int(assoc.send_n_create(bad, MPPS, str(generate_uid()))[0]
                                      .Status)
        create = Dataset()
        create.PerformedProcedureStepStatus = "IN PROGRESS"
        create.PatientID = "P1"
        create.PerformedStationAETitle = "CT1"
        out["create"] = int(assoc.send_n_create(create, MPPS, uid)[0].Status)
        out["create_again"] = int(assoc.send_n_create(create, MPPS, uid)[0].Status)
        update = Dataset()
        update.PatientID = "P2"
        out["set"] = int(assoc.send_n_set(update, MPPS, uid)[0].Status)
        final = Dataset()
        final.PerformedProcedureStepStatus = "COMPLETED"
        out["complete"] = int(assoc.send_n_set(final, MPPS, uid)[0].Status)
        late = Dataset()
        late.PatientID = "P3"
        status, _ = assoc.send_n_set(late, MPPS, uid)
        out["set_after_complete"] = (int(status.Status), str(status.get("ErrorComment", "")))
        status, reply = assoc.send_n_get([0x00100020, 0x00400252], MPPS, uid)
        out["get"] = (int(status.Status), reply.PatientID, reply.PerformedProcedureStepStatus)
        status, _ = assoc.send_n_get(None, MPPS, str(generate_uid()))
        out["get_unknown"] = int(status.Status)
    finally:
        assoc.release()
    return out


async def test_pynetdicom_mpps(serve: StartServe) -> None:
    srv = await serve("-aet", "ARCHIVE").ready()
    out = await in_thread(_mpps_flow, srv.port)
    assert out == {
        "create_completed": 0x0106,
        "create": 0x0000,
        "create_again": 0x0111,
        "set": 0x0000,
        "complete": 0x0000,
        "set_after_complete": (0x0110, "Performed Procedure Step Object may no longer be updated"),
        "get": (0x0000, "P2", "COMPLETED"),
        "get_unknown": 0x0112,
    }
