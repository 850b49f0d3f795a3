"""A UPS service on a loopback server with a SQLite store, a recording hook, and
workitem data sets, for the UPS tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset

from aiodimse import AE, Association, Server
from aiodimse.services import Quotas, ServiceSet
from aiodimse.services.ups import UPS_PULL, UPS_PUSH, UPS_QUERY, UPS_WATCH, UPSService
from aiodimse.store.sqlite import SQLiteStore

__all__ = ["Recorder", "Running", "running_ups", "workitem", "connect", "code_item",
           "completion", "cancellation"]


@dataclass
class Recorder:
    """A WorkitemEvents that writes down each call: (hook, UID, state or detail)."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def _add(self, hook: str, ds: Dataset, detail: str = "") -> None:
        self.calls.append((hook, str(ds.SOPInstanceUID), detail or
                           str(ds.get("ProcedureStepState", ""))))

    async def created(self, workitem: Dataset) -> None:
        self._add("created", workitem)

    async def state_changed(self, workitem: Dataset, reason: str | None) -> None:
        self._add("state_changed", workitem)

    async def cancel_requested(self, workitem: Dataset, request: Dataset) -> None:
        self._add("cancel_requested", workitem, str(request.get("RequestingAE", "")))

    async def progress(self, workitem: Dataset) -> None:
        self._add("progress", workitem)

    async def assigned(self, workitem: Dataset) -> None:
        self._add("assigned", workitem)

    async def deletion_locked(self, uid: str) -> bool:
        return False


@dataclass
class Running:
    server: Server
    store: SQLiteStore
    service: UPSService
    events: Recorder


@asynccontextmanager
async def running_ups(data: Path, events: Recorder | None = None,
                      quotas: Quotas | None = None) -> AsyncIterator[Running]:
    store = SQLiteStore.in_directory(data)
    events = events or Recorder()
    service = UPSService(store, events, quotas=quotas)
    services = ServiceSet([service])
    server = await services.start_server(AE("UPS_SCP"), ("127.0.0.1", 0))
    try:
        yield Running(server, store, service, events)
    finally:
        await services.shutdown(server, 1.0)
        await store.aclose()


async def connect(port: int, title: str = "PERFORMER") -> Association:
    ae = AE(title)
    for uid in (UPS_PUSH, UPS_PULL, UPS_WATCH, UPS_QUERY):
        ae.add_requested_context(uid)
    return await ae.associate("127.0.0.1", port, ae_title="UPS_SCP")


def code_item(value: str, scheme: str = "DCM", meaning: str = "") -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning or value
    return item


def workitem(patient_id: str = "P1", start: str = "20260101100000",
             code: str = "110005", label: str = "AI triage") -> Dataset:
    """A SCHEDULED workitem with every attribute the SCP requires of an N-CREATE."""
    ds = Dataset()
    ds.ProcedureStepState = "SCHEDULED"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ProcedureStepLabel = label
    ds.WorklistLabel = "AI"
    ds.ScheduledProcedureStepStartDateTime = start
    ds.InputReadinessState = "READY"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.ScheduledWorkitemCodeSequence = [code_item(code)]
    ds.InputInformationSequence = []
    ds.ScheduledStationNameCodeSequence = []
    return ds


def completion() -> Dataset:
    """The N-SET that meets the COMPLETED final-state requirements."""
    performed = Dataset()
    performed.PerformedStationNameCodeSequence = [code_item("WS1", "99LOCAL")]
    performed.PerformedProcedureStepStartDateTime = "20260101100500"
    performed.PerformedWorkitemCodeSequence = [code_item("110005")]
    performed.PerformedProcedureStepEndDateTime = "20260101101000"
    performed.OutputInformationSequence = []
    mods = Dataset()
    mods.UnifiedProcedureStepPerformedProcedureSequence = [performed]
    return mods


def cancellation() -> Dataset:
    """The N-SET that meets the CANCELED final-state requirements the SCU owes (the
    discontinuation reason code; the SCP adds the cancellation time)."""
    item = Dataset()
    item.ProcedureStepDiscontinuationReasonCodeSequence = [code_item("110513")]
    mods = Dataset()
    mods.ProcedureStepProgressInformationSequence = [item]
    return mods
