"""A Storage Commitment SCU that receives its report on a second association.

It asks the SCP to commit the instances of the DICOM files named, releases the
association, and listens for the SCP's N-EVENT-REPORT on an association the SCP
opens to it (PS3.4 J.3.3): the SCP must know where MY_SCU listens (for
``aiodimse serve``: ``--peer MY_SCU@HOST:LISTEN_PORT``).

Run: python3 commitment_scu.py HOST PORT LISTEN_PORT FILE...
"""

import asyncio
import sys

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, evt

STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"


def commitment_request(transaction_uid: str, paths: list[str]) -> Dataset:
    """The Action Information: the Transaction UID and one item per instance."""
    items = []
    for path in paths:
        ds = dcmread(path, stop_before_pixels=True)
        item = Dataset()
        item.ReferencedSOPClassUID = ds.SOPClassUID
        item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        items.append(item)
    request = Dataset()
    request.TransactionUID = transaction_uid
    request.ReferencedSOPSequence = items
    return request


async def main(host: str, port: int, listen_port: int, paths: list[str]) -> int:
    transaction_uid = generate_uid()
    report: asyncio.Future[tuple[Dataset, object]] = asyncio.get_running_loop().create_future()

    async def on_report(event):
        info = event.event_information
        if info.TransactionUID != transaction_uid or report.done():
            return 0x0110, None  # not the report this program waits for
        report.set_result((info, event.assoc))
        return 0x0000, None  # the SCP counts the report as delivered

    ae = AE("MY_SCU")
    ae.add_requested_context(STORAGE_COMMITMENT)
    # The SCP will propose the SCP role for itself on its association to us: accept it.
    ae.add_supported_context(STORAGE_COMMITMENT, scp_role=True)
    server = await ae.start_server(("0.0.0.0", listen_port),
                                   evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    async with server:
        async with ae.associate(host, port, ae_title="ARCHIVE") as assoc:
            status, _ = await assoc.send_n_action(
                commitment_request(transaction_uid, paths), 1,
                STORAGE_COMMITMENT, WELL_KNOWN_INSTANCE)
            print(f"N-ACTION status 0x{status.Status:04X}")
            if status.Status != 0x0000:
                return 1
        # Released: the report comes on a new association, within a minute here.
        info, carrier = await asyncio.wait_for(report, timeout=60)
        # The SCP releases its association once answered: let it, then stop listening.
        await asyncio.wait_for(carrier.wait_closed(), timeout=10)
    committed = len(info.get("ReferencedSOPSequence", []))
    failed = len(info.get("FailedSOPSequence", []))
    print(f"report: {committed} committed, {failed} failed")
    return 0 if failed == 0 else 2


if __name__ == "__main__":
    host, port, listen_port, *paths = sys.argv[1:]
    sys.exit(asyncio.run(main(host, int(port), int(listen_port), paths)))
