"""Row 8's reply data sets: what the handlers return, and the bytes of the other side.

Row 8: handlers that answer with a pydicom Dataset, written as users write them
(pynetdicom's documentation does the same): an N-ACTION with a small Action Reply (the
same object each time, or a new one per request), an N-GET returning 20 attributes of
a stored MPPS instance picked by the request's Attribute Identifier List, and an
N-CREATE returning the created attributes (the request's, with the SOP Class and
Instance UIDs added). The handlers are plain functions of the event, shared by the
aiodimse and pynetdicom servers; ``--replies`` picks them:

  same     N-ACTION returns one Action Reply made at start-up; N-GET/N-CREATE reply
  new      N-ACTION builds its Action Reply per request; N-GET/N-CREATE reply
  dropped  every handler does the work of ``new`` and returns ``(0x0000, None)``
  none     every handler returns ``(0x0000, None)`` and does nothing else

``dropped`` and ``none`` are the rows' "without a reply" contenders: the difference
to ``new`` / ``same`` is what sending the reply costs. The request and response bytes
(for the load generator and the ceiling) are built here with pydicom, once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from benchmarks import pdus

__all__ = [
    "MODES",
    "MPPS_CLASS",
    "MPPS_INSTANCE",
    "OPS",
    "PC_MPPS",
    "REQUESTED_TAGS",
    "action_reply",
    "handlers",
    "mpps_attributes",
    "n_create_rq",
    "n_get_rq",
    "reply_rsp",
]

MPPS_CLASS = pdus.MPPS_CLASS
MPPS_INSTANCE = "1.2.826.0.1.3680043.10.1385.3.1"
PC_MPPS = pdus.PC_MPPS
OPS = ("naction", "nget", "ncreate")
MODES = ("same", "new", "dropped", "none")
TRANSACTION_UID = "1.2.826.0.1.3680043.10.1385.1.1"

# The N-GET's Attribute Identifier List: 20 attributes of the stored MPPS instance
# (PS3.4 F.7.2.1), of many VRs, two of them sequences with items.
REQUESTED_TAGS = (
    0x00400270,  # ScheduledStepAttributesSequence
    0x00100010,  # PatientName
    0x00100020,  # PatientID
    0x00100030,  # PatientBirthDate
    0x00100040,  # PatientSex
    0x00081120,  # ReferencedPatientSequence (empty)
    0x00400253,  # PerformedProcedureStepID
    0x00400241,  # PerformedStationAETitle
    0x00400242,  # PerformedStationName
    0x00400243,  # PerformedLocation
    0x00400244,  # PerformedProcedureStepStartDate
    0x00400245,  # PerformedProcedureStepStartTime
    0x00400252,  # PerformedProcedureStepStatus
    0x00400254,  # PerformedProcedureStepDescription
    0x00400255,  # PerformedProcedureTypeDescription
    0x00400250,  # PerformedProcedureStepEndDate (empty)
    0x00400251,  # PerformedProcedureStepEndTime (empty)
    0x00080060,  # Modality
    0x00200010,  # StudyID
    0x00400340,  # PerformedSeriesSequence
)


def action_reply() -> Any:
    """A small Action Reply: a UID, an AE title and one referenced instance."""
    from pydicom.dataset import Dataset

    reply = Dataset()
    reply.TransactionUID = TRANSACTION_UID
    reply.RetrieveAETitle = "BENCH_SCP"
    item = Dataset()
    item.ReferencedSOPClassUID = pdus.CT_IMAGE_STORAGE
    item.ReferencedSOPInstanceUID = "1.2.826.0.1.3680043.10.1385.2.1"
    reply.ReferencedSOPSequence = [item]
    return reply


def mpps_attributes() -> Any:
    """An MPPS N-CREATE attribute list (IN PROGRESS), with a Specific Character Set."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    step = Dataset()
    step.StudyInstanceUID = "1.2.826.0.1.3680043.10.1385.4.1"
    step.AccessionNumber = "A0001234"
    step.RequestedProcedureID = "RP0001"
    step.ScheduledProcedureStepID = "SPS0001"
    step.ScheduledProcedureStepDescription = "CT CHEST WITH CONTRAST"
    step.ReferencedStudySequence = []
    ds.ScheduledStepAttributesSequence = [step]
    ds.PatientName = "Doe^Jane^M"
    ds.PatientID = "PID000123"
    ds.IssuerOfPatientID = "HOSPITAL"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.ReferencedPatientSequence = []
    ds.PerformedProcedureStepID = "PPS0001"
    ds.PerformedStationAETitle = "CT01"
    ds.PerformedStationName = "CT ROOM 1"
    ds.PerformedLocation = "RADIOLOGY"
    ds.PerformedProcedureStepStartDate = "20261207"
    ds.PerformedProcedureStepStartTime = "101500"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.PerformedProcedureStepDescription = "CT CHEST"
    ds.PerformedProcedureTypeDescription = "CT CHEST WITH CONTRAST"
    ds.ProcedureCodeSequence = []
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.Modality = "CT"
    ds.StudyID = "S0001"
    ds.PerformedProtocolCodeSequence = []
    ds.TotalTimeOfFluoroscopy = 12
    ds.ImageAndFluoroscopyAreaDoseProduct = "2.5"
    ds.CommentsOnThePerformedProcedureStep = "no complications"
    series = Dataset()
    series.PerformingPhysicianName = "Smith^John"
    series.ProtocolName = "CHEST ROUTINE"
    series.OperatorsName = "Brown^Ann"
    series.SeriesInstanceUID = "1.2.826.0.1.3680043.10.1385.5.1"
    series.SeriesDescription = "AXIAL 1MM"
    series.RetrieveAETitle = "CT01"
    refs = []
    for i in range(2):
        ref = Dataset()
        ref.ReferencedSOPClassUID = pdus.CT_IMAGE_STORAGE
        ref.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.10.1385.6.{i + 1}"
        refs.append(ref)
    series.ReferencedImageSequence = refs
    series.ReferencedNonImageCompositeSOPInstanceSequence = []
    ds.PerformedSeriesSequence = [series]
    return ds


def stored_instance() -> Any:
    """The MPPS instance the N-GET handler answers from (as an N-CREATE left it)."""
    ds = mpps_attributes()
    ds.SOPClassUID = MPPS_CLASS
    ds.SOPInstanceUID = MPPS_INSTANCE
    return ds


# --- handlers (plain functions of the event: pynetdicom's and aiodimse's) -----------

Handler = Callable[[Any], tuple[int, Any]]


def handlers(mode: str) -> dict[str, Handler]:
    """The N-ACTION, N-GET and N-CREATE handlers of a ``--replies`` mode (module doc)."""
    if mode not in MODES:
        raise ValueError(f"unknown --replies mode {mode!r}")
    from pydicom.dataset import Dataset

    shared = action_reply()
    instances = {MPPS_INSTANCE: stored_instance()}
    managed: dict[str, Any] = {}
    keep = mode in ("same", "new")

    def on_n_action(event: Any) -> tuple[int, Any]:
        if mode == "same":
            return 0x0000, shared
        if mode == "none":
            return 0x0000, None
        reply = action_reply()
        return 0x0000, reply if keep else None

    def on_n_get(event: Any) -> tuple[int, Any]:
        if mode == "none":
            return 0x0000, None
        instance = instances.get(event.request.RequestedSOPInstanceUID)
        if instance is None:
            return 0x0112, None  # no such SOP instance
        reply = Dataset()
        for tag in event.attribute_identifiers:
            if tag in instance:
                reply[tag] = instance[tag]
        return 0x0000, reply if keep else None

    def on_n_create(event: Any) -> tuple[int, Any]:
        if mode == "none":
            return 0x0000, None
        ds = event.attribute_list
        ds.SOPClassUID = MPPS_CLASS
        ds.SOPInstanceUID = event.request.AffectedSOPInstanceUID
        managed[ds.SOPInstanceUID] = ds  # one instance: the load repeats its UID
        return 0x0000, ds if keep else None

    return {"naction": on_n_action, "nget": on_n_get, "ncreate": on_n_create}


# --- bytes for the load generator and the ceiling ----------------------------------


def _encode(ds: Any) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = True
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


@lru_cache(maxsize=1)
def n_get_rq() -> pdus.MessageTemplate:
    """N-GET-RQ for the 20 attributes of the stored MPPS instance."""
    cmd: dict[int, int | str | tuple[int, ...]] = {
        0x0003: MPPS_CLASS,
        0x0100: pdus.N_GET_RQ,
        0x0110: 0,
        0x0800: pdus.NO_DATASET,
        0x1001: MPPS_INSTANCE,
        0x1005: REQUESTED_TAGS,
    }
    return pdus.template(PC_MPPS, cmd, None)


@lru_cache(maxsize=1)
def n_create_rq() -> pdus.MessageTemplate:
    """N-CREATE-RQ of the MPPS attribute list, with its Affected SOP Instance UID."""
    cmd: dict[int, int | str | tuple[int, ...]] = {
        0x0002: MPPS_CLASS,
        0x0100: pdus.N_CREATE_RQ,
        0x0110: 0,
        0x0800: 0x0001,
        0x1000: MPPS_INSTANCE,
    }
    return pdus.template(PC_MPPS, cmd, _encode(mpps_attributes()))


def _reply_dataset(command_field: int) -> bytes:
    if command_field == pdus.N_ACTION_RQ:
        return _encode(action_reply())
    instance = stored_instance()
    if command_field == pdus.N_GET_RQ:
        from pydicom.dataset import Dataset

        reply = Dataset()
        for tag in REQUESTED_TAGS:
            reply[tag] = instance[tag]
        return _encode(reply)
    return _encode(instance)  # the created attributes, as the handler returns them


@lru_cache(maxsize=8)
def reply_rsp(command_field: int, pcid: int) -> pdus.MessageTemplate | None:
    """The success response with its reply data set to a request command field."""
    rsp = {pdus.N_ACTION_RQ: pdus.N_ACTION_RSP, pdus.N_GET_RQ: pdus.N_GET_RSP,
           pdus.N_CREATE_RQ: pdus.N_CREATE_RSP}.get(command_field)
    if rsp is None:
        return pdus.response_template(command_field, pcid)
    klass, instance = ((pdus.STGCMT_CLASS, pdus.STGCMT_INSTANCE)
                       if command_field == pdus.N_ACTION_RQ else (MPPS_CLASS, MPPS_INSTANCE))
    cmd: dict[int, int | str | tuple[int, ...]] = {
        0x0002: klass,
        0x0100: rsp,
        0x0120: 0,
        0x0800: 0x0001,
        0x0900: 0,
        0x1000: instance,
    }
    if command_field == pdus.N_ACTION_RQ:
        cmd[0x1008] = 1
    return pdus.template(pcid, cmd, _reply_dataset(command_field))
