"""pynetdicom as a UPS subscriber: it subscribes with N-ACTION on the Watch class and
receives the event reports as the SCU of UPS Event (accepting our SCP role)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pynetdicom
from pydicom.dataset import Dataset

from aiodimse.services.delivery import Peer
from aiodimse.services.ups.uids import GLOBAL_SUBSCRIPTION, UPS_EVENT, UPS_PUSH, UPS_WATCH

from ..dcmtk_tools import free_port
from ..services.ups_fakes import FakeSource, subscribe_info, watch_scp, workitem

WI1 = "1.2.826.0.1.3680043.10.9.11"
WI2 = "1.2.826.0.1.3680043.10.9.12"


class _Received:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reports: list[tuple[int, str, str, str]] = []

    def on_report(self, event: Any) -> tuple[int, None]:
        info = event.event_information
        with self.lock:
            self.reports.append((int(event.event_type),
                                 str(event.request.AffectedSOPClassUID),
                                 str(event.request.AffectedSOPInstanceUID),
                                 str(info.get("ProcedureStepState", ""))))
        return 0x0000, None

    def snapshot(self) -> list[tuple[int, str, str, str]]:
        with self.lock:
            return list(self.reports)


async def _until(received: _Received, count: int, timeout: float = 20.0) -> None:
    async def wait() -> None:
        while len(received.snapshot()) < count:
            await asyncio.sleep(0.02)
    await asyncio.wait_for(wait(), timeout)


def _pn_subscribe(port: int, instance: str) -> int:
    ae = pynetdicom.AE(ae_title="PN_RIS")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(UPS_WATCH)
    assoc = ae.associate("127.0.0.1", port, ae_title="UPS_SCP")
    assert assoc.is_established
    try:
        info = Dataset()
        info.ReceivingAE = "PN_RIS"
        info.DeletionLock = "FALSE"
        status, _ = assoc.send_n_action(info, 3, UPS_PUSH, instance)
        return int(status.Status)
    finally:
        assoc.release()


async def test_pynetdicom_subscribes_and_receives_the_reports(tmp_path: Path) -> None:
    received = _Received()
    pn = pynetdicom.AE(ae_title="PN_RIS")
    pn.acse_timeout = pn.dimse_timeout = pn.network_timeout = 10
    pn.add_supported_context(UPS_EVENT, scp_role=True, scu_role=True)
    port = free_port()
    server = pn.start_server(("127.0.0.1", port), block=False,
                             evt_handlers=[(pynetdicom.evt.EVT_N_EVENT_REPORT,
                                            received.on_report)])
    source = FakeSource(workitem(WI1), workitem(WI2))
    try:
        async with watch_scp(tmp_path, source,
                             {"PN_RIS": Peer(host="127.0.0.1", port=port)}) as scp:
            status = await asyncio.to_thread(_pn_subscribe, scp.server.port, WI1)
            assert status == 0
            await _until(received, 1)
            await scp.service.state_changed(source.put(workitem(WI1, "IN PROGRESS")), None)
            await scp.service.state_changed(source.put(workitem(WI1, "COMPLETED")), None)
            await _until(received, 3)
            # a global subscription sent by our own SCU reaches it too
            assert (await scp.action(3, GLOBAL_SUBSCRIPTION, subscribe_info("PN_RIS")))[0] \
                == 0
            await _until(received, 5)
        await _until(received, 6)  # GOING DOWN
    finally:
        server.shutdown()
    reports = received.snapshot()
    assert reports[:3] == [
        (1, UPS_PUSH, WI1, "SCHEDULED"), (1, UPS_PUSH, WI1, "IN PROGRESS"),
        (1, UPS_PUSH, WI1, "COMPLETED")]
    assert sorted(r[2] for r in reports[3:5]) == [WI1, WI2]
    assert reports[5][:3] == (4, UPS_PUSH, GLOBAL_SUBSCRIPTION)
