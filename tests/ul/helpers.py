"""Shared builders for the upper-layer tests: real PDUs, and cores walked into any state."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiodimse.ul import DataIndication, ULConfig, ULEvent, UpperLayer
from aiodimse.ul.states import State
from aiodimse.wire.codec import decode_pdu, encode_pdu, encode_single_pdv
from aiodimse.wire.items import (
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
)
from aiodimse.wire.pdus import (
    PDU,
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
)

__all__ = [
    "VERIFICATION",
    "IMPLICIT_LE",
    "EXPLICIT_LE",
    "CONFIG",
    "make_rq",
    "make_ac",
    "make_rj",
    "RQ_BYTES",
    "AC_BYTES",
    "RJ_BYTES",
    "PDATA_BYTES",
    "RELEASE_RQ_BYTES",
    "RELEASE_RP_BYTES",
    "ABORT_BYTES",
    "GARBAGE_BYTES",
    "REQUESTOR_STATES",
    "ACCEPTOR_STATES",
    "drive_to",
    "split_pdus",
    "sent_pdus",
    "Pair",
]

VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
CONFIG = ULConfig(artim_timeout=30.0, associate_timeout=20.0, release_timeout=10.0)


def make_rq(*, maximum_length: int | None = 16382, protocol_version: int = 1) -> AAssociateRQ:
    return AAssociateRQ(
        called_ae_title="ACCEPTOR",
        calling_ae_title="REQUESTOR",
        presentation_contexts=(
            PresentationContextRQ(
                context_id=1, abstract_syntax=VERIFICATION, transfer_syntaxes=(IMPLICIT_LE,)
            ),
        ),
        user_information=UserInformation(
            maximum_length=maximum_length, implementation_class_uid="1.2.3.4"
        ),
        protocol_version=protocol_version,
    )


def make_ac(*, maximum_length: int | None = 16382) -> AAssociateAC:
    return AAssociateAC(
        called_ae_title="ACCEPTOR",
        calling_ae_title="REQUESTOR",
        presentation_contexts=(
            PresentationContextAC(context_id=1, result=0, transfer_syntax=IMPLICIT_LE),
        ),
        user_information=UserInformation(
            maximum_length=maximum_length, implementation_class_uid="1.2.3.4"
        ),
    )


def make_rj(result: int = 1, source: int = 1, reason: int = 1) -> AAssociateRJ:
    return AAssociateRJ(result=result, source=source, reason=reason)


RQ_BYTES = encode_pdu(make_rq())
AC_BYTES = encode_pdu(make_ac())
RJ_BYTES = encode_pdu(make_rj())
PDATA_BYTES = encode_single_pdv(1, 0x03, b"\x00\x00" * 8)
RELEASE_RQ_BYTES = encode_pdu(AReleaseRQ())
RELEASE_RP_BYTES = encode_pdu(AReleaseRP())
ABORT_BYTES = encode_pdu(AAbort(source=2, reason=1))
GARBAGE_BYTES = b"\x09\x00\x00\x00\x00\x00"  # unrecognized PDU type 0x09

REQUESTOR_STATES = frozenset(
    {State.STA1, State.STA4, State.STA5, State.STA6, State.STA7, State.STA8, State.STA9,
     State.STA11, State.STA13}
)  # fmt: skip
ACCEPTOR_STATES = frozenset(
    {State.STA1, State.STA2, State.STA3, State.STA6, State.STA7, State.STA8, State.STA10,
     State.STA12, State.STA13}
)  # fmt: skip


def drive_to(state: State, *, requestor: bool, config: ULConfig = CONFIG) -> UpperLayer:
    """A core walked into ``state`` at time 0 with real primitives and PDU bytes.

    Sta13 is reached by a local A-ABORT from Sta6 (ARTIM running). The output buffer is
    drained, so that what a test sees afterwards comes from the event under test.
    """
    if requestor and state not in REQUESTOR_STATES:
        raise ValueError(f"{state.name} is not reachable on the requestor side")
    if not requestor and state not in ACCEPTOR_STATES:
        raise ValueError(f"{state.name} is not reachable on the acceptor side")
    ul = UpperLayer(requestor=requestor, config=config)
    if state is not State.STA1:
        _walk(ul, state)
    ul.data_to_send()
    assert ul.state is state
    return ul


def _walk(ul: UpperLayer, state: State) -> None:
    if ul.is_requestor:
        ul.request_association(make_rq(), 0.0)
        if state is State.STA4:
            return
        ul.transport_connected(0.0)
        if state is State.STA5:
            return
        ul.receive_data(AC_BYTES, 0.0)
    else:
        ul.transport_indication(0.0)
        if state is State.STA2:
            return
        ul.receive_data(RQ_BYTES, 0.0)
        if state is State.STA3:
            return
        ul.accept(make_ac(), 0.0)
    if state is State.STA6:
        return
    if state is State.STA13:
        ul.abort(0.0)
        return
    if state is State.STA8:
        ul.receive_data(RELEASE_RQ_BYTES, 0.0)
        return
    ul.request_release(0.0)
    if state is State.STA7:
        return
    ul.receive_data(RELEASE_RQ_BYTES, 0.0)  # collision: Sta9 or Sta10
    if state in (State.STA9, State.STA10):
        return
    if state is State.STA11:
        ul.respond_release(0.0)
        return
    ul.receive_data(RELEASE_RP_BYTES, 0.0)  # Sta12


def split_pdus(data: bytes) -> list[bytes]:
    """Cut a byte stream of whole PDUs into PDUs."""
    out = []
    while data:
        size = 6 + int.from_bytes(data[2:6], "big")
        out.append(data[:size])
        data = data[size:]
    return out


def sent_pdus(ul: UpperLayer) -> list[PDU]:
    """Drain and decode what the core queued."""
    return [decode_pdu(p) for p in split_pdus(ul.data_to_send())]


@dataclass
class Pair:
    """A requestor and an acceptor core wired back to back in memory."""

    config: ULConfig = CONFIG
    now: float = 0.0
    requestor: UpperLayer = field(init=False)
    acceptor: UpperLayer = field(init=False)
    r_events: list[ULEvent] = field(default_factory=list)
    a_events: list[ULEvent] = field(default_factory=list)
    wire_to_requestor: list[bytes] = field(default_factory=list)
    wire_to_acceptor: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.requestor = UpperLayer(requestor=True, config=self.config)
        self.acceptor = UpperLayer(requestor=False, config=self.config)

    def connect(self, rq: AAssociateRQ | None = None) -> None:
        self.requestor.request_association(rq or make_rq(), self.now)
        self.requestor.transport_connected(self.now)
        self.acceptor.transport_indication(self.now)

    def to_acceptor(self) -> list[ULEvent]:
        data = self.requestor.data_to_send()
        self.wire_to_acceptor.append(data)
        events = self.acceptor.receive_data(data, self.now) if data else []
        self.a_events += events
        return events

    def to_requestor(self) -> list[ULEvent]:
        data = self.acceptor.data_to_send()
        self.wire_to_requestor.append(data)
        events = self.requestor.receive_data(data, self.now) if data else []
        self.r_events += events
        return events

    def associate(self) -> None:
        self.connect()
        self.to_acceptor()
        self.acceptor.accept(make_ac(), self.now)
        self.to_requestor()
        assert self.requestor.state is State.STA6
        assert self.acceptor.state is State.STA6
        self.r_events.clear()
        self.a_events.clear()


def merge_data(events: list[ULEvent]) -> list[ULEvent]:
    """``events`` with consecutive DataIndications folded into one.

    How P-DATA-TF PDUs group into indications depends on how the bytes were cut
    (PDUs received at once come in one); the PDVs, in order, do not.
    """
    out: list[ULEvent] = []
    for ev in events:
        if isinstance(ev, DataIndication) and out and isinstance(out[-1], DataIndication):
            out[-1] = DataIndication(out[-1].pdvs + ev.pdvs)
        else:
            out.append(ev)
    return out
