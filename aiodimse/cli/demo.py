"""``aiodimse demo``: a storage-commitment SCP and SCU talking over loopback."""

from __future__ import annotations

import time

from pydicom.dataset import Dataset

from .. import evt
from ..ae import AE
from ..events import Event
from ..presentation import VERIFICATION
from ..uids import new_uid

__all__ = ["run_demo", "STORAGE_COMMITMENT", "STORAGE_COMMITMENT_INSTANCE"]

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"


async def _on_n_action(event: Event) -> tuple[int, Dataset | None]:
    info = event.action_information
    refs = info.get("ReferencedSOPSequence", [])
    return (0x0000 if len(refs) else 0x0110), None


def _request(count: int) -> Dataset:
    ds = Dataset()
    ds.TransactionUID = new_uid()
    items = []
    for _ in range(count):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = new_uid()
        items.append(item)
    ds.ReferencedSOPSequence = items
    return ds


async def run_demo(*, port: int = 0, count: int = 1000) -> int:
    """Start an SCP, associate with it, C-ECHO, then ``count`` N-ACTIONs; print rates."""
    scp = AE("DEMO_SCP")
    scp.add_supported_context(VERIFICATION)
    scp.add_supported_context(STORAGE_COMMITMENT)
    server = await scp.start_server(
        ("127.0.0.1", port), evt_handlers=[(evt.EVT_N_ACTION, _on_n_action)]
    )
    async with server:
        print(f"SCP DEMO_SCP listening on 127.0.0.1:{server.port}")
        scu = AE("DEMO_SCU")
        scu.add_requested_context(VERIFICATION)
        scu.add_requested_context(STORAGE_COMMITMENT)
        async with scu.associate("127.0.0.1", server.port, ae_title="DEMO_SCP") as assoc:
            status = await assoc.send_c_echo()
            print(f"C-ECHO: status 0x{int(status.Status):04X}")
            ds = _request(10)
            start = time.perf_counter()
            failures = 0
            for _ in range(count):
                status, _reply = await assoc.send_n_action(
                    ds, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
                )
                failures += int(status.Status) != 0
            elapsed = time.perf_counter() - start
            rate = count / elapsed if elapsed > 0 else float("inf")
            print(f"N-ACTION x{count}: {rate:,.0f} per second, {failures} failures")
    return 0 if failures == 0 else 1
