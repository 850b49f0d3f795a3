"""Robustness: byte-at-a-time feeding, and random event/byte sequences.

Only ``LocalProtocolError`` (our own misuse) may escape the core; whatever the peer
sends becomes events (an abort at worst), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiodimse.errors import LocalProtocolError
from aiodimse.ul import ULEvent, UpperLayer
from aiodimse.ul.states import State
from aiodimse.wire.codec import decode_pdu, encode_pdu
from aiodimse.wire.pdus import PDU
from tests.examples import examples
from tests.wire.strategies import pdus

from .helpers import (
    ABORT_BYTES,
    AC_BYTES,
    CONFIG,
    GARBAGE_BYTES,
    PDATA_BYTES,
    RELEASE_RP_BYTES,
    RELEASE_RQ_BYTES,
    RJ_BYTES,
    RQ_BYTES,
    drive_to,
    make_ac,
    make_rj,
    make_rq,
    merge_data,
    split_pdus,
)

FUZZ = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TIMED_STATES = {
    State.STA2, State.STA5, State.STA7, State.STA9, State.STA10, State.STA11, State.STA13
}  # fmt: skip


def feed_whole(ul: UpperLayer, data: bytes) -> tuple[list[ULEvent], bytes]:
    return merge_data(ul.receive_data(data, 1.0)), ul.data_to_send()


def feed_chunks(ul: UpperLayer, data: bytes, cuts: list[int]) -> tuple[list[ULEvent], bytes]:
    events: list[ULEvent] = []
    out = b""
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut <= start:
            continue
        events += ul.receive_data(data[start:cut], 1.0)
        out += ul.data_to_send()
        start = cut
    return merge_data(events), out


STREAMS = {
    # requestor in Sta5: AC, data, the peer's release request, then stray bytes
    (State.STA5, True): AC_BYTES + PDATA_BYTES * 3 + RELEASE_RQ_BYTES + PDATA_BYTES,
    # acceptor in Sta6: data, then an invalid PDU (abort), then more
    (State.STA6, False): PDATA_BYTES * 2 + GARBAGE_BYTES + PDATA_BYTES,
    # requestor in Sta7: responses after our release request, then the RP
    (State.STA7, True): PDATA_BYTES * 2 + RELEASE_RP_BYTES + PDATA_BYTES,
    # acceptor in Sta2: the request, then a P-DATA before we answered (protocol error)
    (State.STA2, False): RQ_BYTES + PDATA_BYTES + ABORT_BYTES,
    # Sta13 ignores everything but RQ / invalid PDUs / A-ABORT
    (State.STA13, True): AC_BYTES + RJ_BYTES + PDATA_BYTES + RELEASE_RQ_BYTES + RQ_BYTES,
}


def test_byte_at_a_time_equals_whole() -> None:
    for (state, requestor), data in STREAMS.items():
        whole = feed_whole(drive_to(state, requestor=requestor), data)
        single = feed_chunks(drive_to(state, requestor=requestor), data, list(range(len(data))))
        assert single == whole, (state, requestor)
        assert whole[0] or whole[1]  # something happened


@FUZZ
@given(
    key=st.sampled_from(sorted(STREAMS, key=lambda k: (k[0], k[1]))),
    cuts=st.lists(st.integers(0, 2000), max_size=30),
)
def test_any_split_equals_whole(key: tuple[State, bool], cuts: list[int]) -> None:
    state, requestor = key
    data = STREAMS[key]
    whole = feed_whole(drive_to(state, requestor=requestor), data)
    chunked = feed_chunks(drive_to(state, requestor=requestor), data, cuts)
    assert chunked == whole


@FUZZ
@given(
    stream=st.lists(pdus(), min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 4000), max_size=20),
    requestor=st.booleans(),
)
def test_random_pdus_split_equals_whole(
    stream: list[PDU], cuts: list[int], requestor: bool
) -> None:
    data = b"".join(encode_pdu(p) for p in stream)
    whole = feed_whole(drive_to(State.STA6, requestor=requestor), data)
    chunked = feed_chunks(drive_to(State.STA6, requestor=requestor), data, cuts)
    assert chunked == whole


# -- random sequences of primitives and bytes ---------------------------------------


@dataclass(frozen=True)
class Op:
    name: str
    data: bytes = b""
    number: float = 0.0


_VALID = [
    AC_BYTES, RJ_BYTES, RQ_BYTES, PDATA_BYTES, RELEASE_RQ_BYTES, RELEASE_RP_BYTES, ABORT_BYTES
]  # fmt: skip


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_VALID)))
    for _ in range(draw(st.integers(1, 3))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data[: draw(st.integers(1, len(data)))])


_BYTES = st.one_of(
    st.sampled_from(_VALID),
    st.binary(max_size=40),
    _mutated(),
    pdus().map(encode_pdu),
    st.lists(st.sampled_from(_VALID), max_size=4).map(b"".join),
)

OPS = st.one_of(
    st.sampled_from(
        [
            Op("request_association"),
            Op("transport_connected"),
            Op("transport_indication"),
            Op("accept"),
            Op("reject"),
            Op("send_pdata"),
            Op("request_release"),
            Op("respond_release"),
            Op("close"),
        ]
    ),
    st.builds(Op, name=st.just("abort"), number=st.sampled_from([0, 1, 2, 3])),
    st.builds(Op, name=st.just("receive"), data=_BYTES),
    st.builds(Op, name=st.just("timer"), number=st.floats(0, 40)),
)


def _apply(ul: UpperLayer, op: Op, now: float) -> list[ULEvent]:
    if op.name == "receive":
        return ul.receive_data(op.data, now)
    if op.name == "timer":
        return ul.handle_timer(now)
    if op.name == "close":
        return ul.connection_closed(now)
    if op.name == "abort":
        return ul.abort(now, source=int(op.number), reason=0)
    calls = {
        "request_association": lambda: ul.request_association(make_rq(), now),
        "transport_connected": lambda: ul.transport_connected(now),
        "transport_indication": lambda: ul.transport_indication(now),
        "accept": lambda: ul.accept(make_ac(), now),
        "reject": lambda: ul.reject(make_rj(), now),
        "send_pdata": lambda: ul.send_pdata(PDATA_BYTES),
        "request_release": lambda: ul.request_release(now),
        "respond_release": lambda: ul.respond_release(now),
    }
    calls[op.name]()
    return []


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requestor=st.booleans(), ops=st.lists(OPS, max_size=25))
def test_random_sequences_raise_only_local_errors(requestor: bool, ops: list[Op]) -> None:
    ul = UpperLayer(requestor=requestor, config=CONFIG)
    now = 0.0
    for op in ops:
        if op.name == "timer":
            now += op.number
        state, deadline = ul.state, ul.next_deadline()
        try:
            _apply(ul, op, now)
        except LocalProtocolError:
            # Misuse: nothing changed, nothing queued.
            assert op.name != "receive" or state is State.STA4
            assert ul.state is state
            assert ul.next_deadline() == deadline
            assert ul.data_to_send() == b""
            continue
        # Whatever we send is a sequence of well-formed PDUs.
        for pdu in split_pdus(ul.data_to_send()):
            decode_pdu(pdu)
        # Timers run only where the standard (ARTIM) or our own timeouts say.
        if ul.next_deadline() is not None:
            assert ul.state in TIMED_STATES
        elif ul.state in {State.STA2, State.STA5, State.STA7, State.STA13}:
            raise AssertionError(f"no timer in {ul.state.name}")


@FUZZ
@given(
    state=st.sampled_from([State.STA2, State.STA3, State.STA6, State.STA7, State.STA13]),
    chunks=st.lists(_BYTES, min_size=1, max_size=8),
)
def test_remote_garbage_never_raises(state: State, chunks: list[bytes]) -> None:
    ul = drive_to(state, requestor=state in (State.STA7,))
    for chunk in chunks:
        ul.receive_data(chunk, 1.0)
        for pdu in split_pdus(ul.data_to_send()):
            decode_pdu(pdu)
