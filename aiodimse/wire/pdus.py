"""The seven PDUs of PS3.8 9.3 as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .codes import APPLICATION_CONTEXT_NAME, PDUType
from .items import PresentationContextAC, PresentationContextRQ, UnknownItem, UserInformation

__all__ = [
    "AAssociateRQ",
    "AAssociateAC",
    "AAssociateRJ",
    "PDV",
    "Fragment",
    "PDataTF",
    "AReleaseRQ",
    "AReleaseRP",
    "AAbort",
    "PDU",
]


def _check_bytes(**fields: int) -> None:
    for name, value in fields.items():
        if not 0 <= value <= 0xFF:
            raise ValueError(f"{name} must fit a byte: {value}")


def _check_ae_title(name: str, value: str) -> None:
    if len(value) > 16:
        raise ValueError(f"{name} longer than 16 characters: {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class AAssociateRQ:
    """PS3.8 9.3.2. AE titles are held without their space padding."""

    pdu_type = PDUType.A_ASSOCIATE_RQ
    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = 1
    unknown_items: tuple[UnknownItem, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_ae_title("called AE title", self.called_ae_title)
        _check_ae_title("calling AE title", self.calling_ae_title)


@dataclass(frozen=True, slots=True, kw_only=True)
class AAssociateAC:
    """PS3.8 9.3.3. The AE title fields echo the request and are never tested."""

    pdu_type = PDUType.A_ASSOCIATE_AC
    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = 1
    unknown_items: tuple[UnknownItem, ...] = field(default=())

    def __post_init__(self) -> None:
        _check_ae_title("called AE title", self.called_ae_title)
        _check_ae_title("calling AE title", self.calling_ae_title)


@dataclass(frozen=True, slots=True, kw_only=True)
class AAssociateRJ:
    """PS3.8 9.3.4; codes of Table 9-21 (see ``codes``)."""

    pdu_type = PDUType.A_ASSOCIATE_RJ
    result: int
    source: int
    reason: int

    def __post_init__(self) -> None:
        _check_bytes(result=self.result, source=self.source, reason=self.reason)


Fragment = tuple[int, int, "bytes | memoryview"]
"""A PDV's fields as a plain tuple: (context ID, control header, data).

What the data-transfer receive path hands over (a ``PDV`` is one too): a plain
tuple is built in a fifth of a named tuple's time, once per message fragment.
"""


class PDV(NamedTuple):
    """One presentation-data-value item of a P-DATA-TF (PS3.8 9.3.5, Annex E.2).

    ``control`` is the message control header: bit 0 command, bit 1 last fragment.
    ``data`` may be a memoryview into the received PDU (no copy). A named tuple:
    the receive path makes one per message fragment, and a tuple is built (and
    unpacked) in one step.
    """

    context_id: int
    control: int
    data: bytes | memoryview

    @property
    def is_command(self) -> bool:
        return bool(self.control & 0x01)

    @property
    def is_last(self) -> bool:
        return bool(self.control & 0x02)


@dataclass(frozen=True, slots=True, kw_only=True)
class PDataTF:
    """PS3.8 9.3.5: one or more PDVs, all of one message."""

    pdu_type = PDUType.P_DATA_TF
    pdvs: tuple[PDV, ...]

    def __post_init__(self) -> None:
        if not self.pdvs:
            raise ValueError("a P-DATA-TF needs at least one PDV")


@dataclass(frozen=True, slots=True)
class AReleaseRQ:
    """PS3.8 9.3.6."""

    pdu_type = PDUType.A_RELEASE_RQ


@dataclass(frozen=True, slots=True)
class AReleaseRP:
    """PS3.8 9.3.7."""

    pdu_type = PDUType.A_RELEASE_RP


@dataclass(frozen=True, slots=True, kw_only=True)
class AAbort:
    """PS3.8 9.3.8; ``reason`` is significant only for the service-provider source."""

    pdu_type = PDUType.A_ABORT
    source: int = 0
    reason: int = 0

    def __post_init__(self) -> None:
        _check_bytes(source=self.source, reason=self.reason)


PDU = AAssociateRQ | AAssociateAC | AAssociateRJ | PDataTF | AReleaseRQ | AReleaseRP | AAbort
