"""An SCU in a few lines: C-ECHO, then a Storage Commitment N-ACTION.

Run: python3 scu.py HOST PORT   (against scp.py, or any SCP of these SOP classes)
"""

import asyncio
import sys

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE

VERIFICATION = "1.2.840.10008.1.1"
STORAGE_COMMITMENT = "1.2.840.10008.1.20.1"
WELL_KNOWN_INSTANCE = "1.2.840.10008.1.20.1.1"


async def main(host: str, port: int) -> None:
    ae = AE("MY_SCU")
    ae.add_requested_context(VERIFICATION)
    ae.add_requested_context(STORAGE_COMMITMENT)
    async with ae.associate(host, port, ae_title="MY_SCP") as assoc:
        status = await assoc.send_c_echo()
        print(f"C-ECHO status 0x{status.Status:04X}")

        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
        item.ReferencedSOPInstanceUID = generate_uid()
        request = Dataset()
        request.TransactionUID = generate_uid()
        request.ReferencedSOPSequence = [item]
        status, _reply = await assoc.send_n_action(
            request, 1, STORAGE_COMMITMENT, WELL_KNOWN_INSTANCE)
        print(f"N-ACTION status 0x{status.Status:04X}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
