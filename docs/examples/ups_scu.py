"""A UPS performer that watches its own workitem: push, subscribe, claim, progress, complete.

Against ``aiodimse serve`` (or any UPS Push, Pull and Watch SCP with the AE title
ARCHIVE): N-CREATE a SCHEDULED workitem, subscribe MY_SCU to its event reports,
claim it with a Transaction UID, report progress, set the final-state attributes
and complete it; then print the N-EVENT-REPORTs that the SCP sent to the listener
this program runs on LISTEN_PORT. The SCP must know where MY_SCU listens (for
``aiodimse serve``: ``--peer MY_SCU@HOST:LISTEN_PORT``).

Run: python3 ups_scu.py HOST PORT LISTEN_PORT
"""

import asyncio
import sys
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, evt
from aiodimse.services.ups.uids import UPS_EVENT, UPS_PULL, UPS_PUSH, UPS_WATCH

CHANGE_STATE, SUBSCRIBE, UNSUBSCRIBE = 1, 3, 4  # N-ACTION Action Type IDs (PS3.4 CC.2)
EVENTS = {1: "UPS State Report", 2: "UPS Cancel Requested", 3: "UPS Progress Report",
          4: "SCP Status Change", 5: "UPS Assigned"}


def now() -> str:
    return datetime.now().strftime("%Y%m%d%H%M%S")


def workitem() -> Dataset:
    """What an N-CREATE must carry: the Type 1 attributes with values, the Type 2 present."""
    ds = Dataset()
    ds.ProcedureStepState = "SCHEDULED"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ScheduledProcedureStepStartDateTime = now()
    ds.InputReadinessState = "READY"
    ds.ProcedureStepLabel = "CT head, 3D reconstruction"
    ds.WorklistLabel = "RECON"
    ds.PatientName, ds.PatientID = "DOE^JANE", "P1"
    ds.PatientBirthDate, ds.PatientSex = "", ""
    ds.ScheduledWorkitemCodeSequence = []
    ds.InputInformationSequence = []
    ds.ScheduledStationNameCodeSequence = []
    return ds


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def state(value: str, transaction_uid: str) -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = value
    ds.TransactionUID = transaction_uid
    return ds


async def main(host: str, port: int, listen_port: int) -> int:
    reports: asyncio.Queue[tuple[int, Dataset, object]] = asyncio.Queue()

    async def on_report(event):
        reports.put_nowait((event.event_type, event.event_information, event.assoc))
        return 0x0000, None  # delivered: the SCP stops retrying it

    ae = AE("MY_SCU")
    for uid in (UPS_PUSH, UPS_PULL, UPS_WATCH):
        ae.add_requested_context(uid)
    # The SCP sends its reports as the SCP of UPS Event, on an association it opens
    # to us, proposing that role for itself: accept it.
    ae.add_supported_context(UPS_EVENT, scu_role=True, scp_role=True)
    listener = await ae.start_server(("0.0.0.0", listen_port),
                                     evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
    async with listener, ae.associate(host, port, ae_title="ARCHIVE") as assoc:
        # Push: the SCP names the workitem (no instance UID given)
        status, _ = await assoc.send_n_create(workitem(), UPS_PUSH)
        uid = status.AffectedSOPInstanceUID
        print(f"N-CREATE 0x{status.Status:04X}: workitem created")

        # Watch: every workitem command names UPS Push; the context says which service
        subscribe = Dataset()
        subscribe.ReceivingAE = "MY_SCU"
        subscribe.DeletionLock = "FALSE"
        status, _ = await assoc.send_n_action(subscribe, SUBSCRIBE, UPS_PUSH, uid, UPS_WATCH)
        print(f"subscribe 0x{status.Status:04X}")

        # Pull: claim it. The Transaction UID is ours; from now on it is the lock.
        lock = generate_uid()
        status, _ = await assoc.send_n_action(state("IN PROGRESS", lock), CHANGE_STATE,
                                              UPS_PUSH, uid, UPS_PULL)
        print(f"claim 0x{status.Status:04X}")

        progress = Dataset()
        step = Dataset()
        step.ProcedureStepProgress = 50
        step.ProcedureStepProgressDescription = "half way"
        progress.ProcedureStepProgressInformationSequence = [step]
        progress.TransactionUID = lock
        status, _ = await assoc.send_n_set(progress, UPS_PUSH, uid, UPS_PULL)
        print(f"progress 0x{status.Status:04X}")

        # COMPLETED needs the final-state attributes first (else 0xC304): where it
        # ran, what it did, when, and what it made (here nothing)
        performed = Dataset()
        performed.PerformedStationNameCodeSequence = [code("WS1", "99LOCAL", "Workstation 1")]
        performed.PerformedWorkitemCodeSequence = [code("110005", "DCM", "Interpretation")]
        performed.PerformedProcedureStepStartDateTime = now()
        performed.PerformedProcedureStepEndDateTime = now()
        performed.OutputInformationSequence = []
        final = Dataset()
        final.UnifiedProcedureStepPerformedProcedureSequence = [performed]
        final.TransactionUID = lock
        status, _ = await assoc.send_n_set(final, UPS_PUSH, uid, UPS_PULL)
        print(f"final-state attributes 0x{status.Status:04X}")
        status, _ = await assoc.send_n_action(state("COMPLETED", lock), CHANGE_STATE,
                                              UPS_PUSH, uid, UPS_PULL)
        print(f"complete 0x{status.Status:04X}")

        # SCHEDULED (sent when we subscribed), IN PROGRESS, the progress, COMPLETED
        for n in range(4):
            kind, info, carrier = await asyncio.wait_for(reports.get(), timeout=30)
            if kind == 3:
                item = info.ProcedureStepProgressInformationSequence[0]
                percent = float(item.ProcedureStepProgress)
                what = f"{percent:g}% {item.ProcedureStepProgressDescription}"
            else:
                what = info.get("ProcedureStepState", "")
            print(f"report {n + 1}: {EVENTS.get(kind, kind)}: {what}")

        status, _ = await assoc.send_n_action(subscribe, UNSUBSCRIBE, UPS_PUSH, uid, UPS_WATCH)
        print(f"unsubscribe 0x{status.Status:04X}")
        # The SCP releases its association once answered: let it, then stop listening.
        await asyncio.wait_for(carrier.wait_closed(), timeout=10)
    return 0


if __name__ == "__main__":
    host, port, listen_port = sys.argv[1:]
    sys.exit(asyncio.run(main(host, int(port), int(listen_port))))
