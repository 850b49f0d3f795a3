"""What the upper-layer core tells its user (the adapter): indications and effects.

Slotted dataclasses, frozen but for the per-chunk DataIndication. They are returned
in order from ``UpperLayer.receive_data``, ``connection_closed``, ``handle_timer`` and
``abort``; bytes to write are fetched separately with ``data_to_send()`` and must be
written before acting on ``CloseTransport``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiodimse.wire.pdus import (
    PDV,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    Fragment,
    PDataTF,
)

__all__ = [
    "AssociateIndication",
    "AssociateAccepted",
    "AssociateRejected",
    "DataIndication",
    "ReleaseIndication",
    "ReleaseConfirmation",
    "Aborted",
    "AbortCause",
    "CloseTransport",
    "ULEvent",
]

AbortCause = Literal["peer", "protocol-error", "connection-lost", "timeout"]


@dataclass(frozen=True, slots=True)
class AssociateIndication:
    """AE-6: the peer asks for an association; answer with ``accept()`` or ``reject()``."""

    pdu: AAssociateRQ


@dataclass(frozen=True, slots=True)
class AssociateAccepted:
    """AE-3: our request was accepted; the association is established (Sta6)."""

    pdu: AAssociateAC


@dataclass(frozen=True, slots=True)
class AssociateRejected:
    """AE-4: our request was rejected; a ``CloseTransport`` follows."""

    pdu: AAssociateRJ


@dataclass(slots=True)
class DataIndication:
    """DT-2 / AR-6: P-DATA-TF PDUs for the DIMSE layer, as their PDVs.

    Not frozen, unlike the other events (treat it as read-only all the same): one
    is built per received chunk, and a frozen dataclass's field costs a descriptor
    call to set.

    The PDVs are what the DIMSE layer consumes; the receive path hands them over
    without building PDU objects, as plain ``(context ID, control, data)`` tuples
    (``fragments``), and the PDVs of consecutive P-DATA-TF PDUs received at once
    come in one indication (as one PDU carrying them all would). ``pdvs`` and
    ``pdu`` give them as ``PDV`` objects and as one PDU when those are wanted.
    """

    fragments: tuple[Fragment, ...]

    @property
    def pdvs(self) -> tuple[PDV, ...]:
        return tuple(PDV(*fragment) for fragment in self.fragments)

    @property
    def pdu(self) -> PDataTF:
        return PDataTF(pdvs=self.pdvs)


@dataclass(frozen=True, slots=True)
class ReleaseIndication:
    """AR-2 / AR-8: the peer asks to release; answer with ``respond_release()``.

    ``collision`` is True when we had asked to release too (AR-8). The requestor side
    answers at once; the acceptor side gets a ``ReleaseConfirmation`` first and then
    answers (PS3.8 7.2.2).
    """

    collision: bool


@dataclass(frozen=True, slots=True)
class ReleaseConfirmation:
    """AR-3 / AR-10: the peer answered our release request."""


@dataclass(frozen=True, slots=True)
class Aborted:
    """The association (or its establishment) ended abnormally.

    ``cause``: "peer" (A-ABORT received, AA-3; ``source``/``reason`` are the peer's),
    "protocol-error" (we received an invalid or unexpected PDU and sent A-ABORT, AA-8 or
    AA-1; ``source``/``reason`` are what we sent), "connection-lost" (AA-4, the transport
    closed under us) or "timeout" (ARTIM in Sta2, or our associate/release timeout, after
    which we sent A-ABORT). For "connection-lost" and "timeout" the source is 2
    (service provider) and the reason 0.
    """

    source: int
    reason: int
    cause: AbortCause


@dataclass(frozen=True, slots=True)
class CloseTransport:
    """Close the transport connection once ``data_to_send()`` has been written."""


ULEvent = (
    AssociateIndication
    | AssociateAccepted
    | AssociateRejected
    | DataIndication
    | ReleaseIndication
    | ReleaseConfirmation
    | Aborted
    | CloseTransport
)
