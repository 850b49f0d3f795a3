"""An MPPS SCU: start a procedure step (N-CREATE), complete it (N-SET), read it back.

Run: python3 mpps_scu.py HOST PORT   (e.g. against ``aiodimse serve -aet ARCHIVE``)
"""

import asyncio
import sys

from pydicom.dataset import Dataset

from aiodimse import AE

MPPS = "1.2.840.10008.3.1.2.3.3"  # Modality Performed Procedure Step SOP Class


async def main(host: str, port: int) -> int:
    ae = AE("MODALITY")
    ae.add_requested_context(MPPS)
    async with ae.associate(host, port, ae_title="ARCHIVE") as assoc:
        step = Dataset()
        step.PerformedProcedureStepStatus = "IN PROGRESS"  # the only state N-CREATE takes
        step.PerformedProcedureStepID = "PPS1"
        step.Modality = "CT"
        step.PatientID = "12345"
        # No instance UID given: the SCP assigns one and returns it in the status.
        status, _ = await assoc.send_n_create(step, MPPS)
        if status.Status != 0x0000:
            print(f"N-CREATE refused: 0x{status.Status:04X}")
            return 1
        uid = status.AffectedSOPInstanceUID
        print(f"N-CREATE 0x{status.Status:04X}: step {uid}")

        done = Dataset()
        done.PerformedProcedureStepStatus = "COMPLETED"
        status, _ = await assoc.send_n_set(done, MPPS, uid)
        print(f"N-SET 0x{status.Status:04X}")

        status, attributes = await assoc.send_n_get([0x00400252], MPPS, uid)
        print(f"N-GET 0x{status.Status:04X}: {attributes.PerformedProcedureStepStatus}")

        # A completed step is final: the SCP refuses any further change.
        again = Dataset()
        again.PerformedProcedureStepStatus = "IN PROGRESS"
        status, _ = await assoc.send_n_set(again, MPPS, uid)
        print(f"N-SET after COMPLETED: 0x{status.Status:04X}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]))))
