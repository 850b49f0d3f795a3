"""Data sets streamed past memory: the assembler's sink hook and streamed sends, sans-IO."""

from __future__ import annotations

import pytest

from aiodimse.dimse import CStoreRQ, DIMSEMessage, ReceivedMessage, encode_command
from aiodimse.dimse.assemble import sink_of
from aiodimse.dimse.session import DIMSESession
from aiodimse.errors import RemoteProtocolError

from ._helpers import split_pdus as _split


def split_pdus(stream: bytes) -> list[tuple[int, int, bytes]]:
    return [pdv for _length, pdvs in _split(stream) for pdv in pdvs]

CT = "1.2.840.10008.5.1.4.1.1.2"


class Store:
    """A request's command set (what ``send_request`` takes)."""

    def encode(self, message_id: int, has_dataset: bool) -> bytes:
        return encode_command(CStoreRQ(MessageID=message_id, AffectedSOPClassUID=CT,
                                       AffectedSOPInstanceUID="1.2.3", Priority=0),
                              has_dataset=has_dataset)


class ListSink:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.finished = self.discarded = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.parts.append(bytes(data))

    def finish(self) -> None:
        self.finished = True

    def discard(self) -> None:
        self.discarded = True


def _pair(max_pdu: int = 1000, window: int = 1
          ) -> tuple[DIMSESession, DIMSESession, list[ListSink]]:
    scu = DIMSESession(context_ids=[1], peer_max_pdu=max_pdu, max_invoked=window)
    scp = DIMSESession(context_ids=[1], peer_max_pdu=max_pdu, max_dataset_length=4096,
                       max_performed=window)
    sinks: list[ListSink] = []

    def sink_for(context_id: int, message: DIMSEMessage) -> ListSink | None:
        if type(message) is not CStoreRQ:
            return None
        sinks.append(ListSink())
        return sinks[-1]

    scp.set_sink_factory(sink_for)
    return scu, scp, sinks


def _streamed(scu: DIMSESession, data: bytes, piece: int) -> bytes:
    _id, pdus = scu.send_request_streamed(1, Store(), 0.0)
    out = [pdus]
    for start in range(0, len(data), piece):
        chunk = data[start:start + piece]
        out.append(scu.data_pdus(1, chunk, start + piece >= len(data)))
    scu.sent(_id, 1.0, 5.0)
    assert scu.next_deadline() == 6.0
    return b"".join(out)


def test_a_sunk_data_set_bypasses_memory_and_its_limit() -> None:
    scu, scp, sinks = _pair()
    data = bytes(range(256)) * 40  # 10 kB: over the session's 4 kB data set limit
    events = scp.receive_fragments(split_pdus(_streamed(scu, data, 2048)), 0.0)
    received = events if type(events) is ReceivedMessage else events[0]
    assert isinstance(received, ReceivedMessage)
    assert sink_of(received) is sinks[0] and received.dataset == b""
    assert b"".join(sinks[0].parts) == data and sinks[0].finished
    assert type(received.message) is CStoreRQ
    assert scp.held == 0


def test_held_bytes_stay_small_while_sinking() -> None:
    scu, scp, sinks = _pair()
    data = b"\x01\x02" * 3000
    pdus = split_pdus(_streamed(scu, data, 1000))
    for fragment in pdus[:-1]:
        assert scp.receive_fragments([fragment], 0.0) == []
        assert scp.held < 200  # the command set at most
    assert sinks[0].parts and not sinks[0].finished


def test_an_unfinished_sunk_message_is_discarded_when_the_session_ends() -> None:
    scu, scp, sinks = _pair()
    pdus = split_pdus(_streamed(scu, b"\0" * 3000, 1000))
    scp.receive_fragments(pdus[:-1], 0.0)
    scp.end()
    assert sinks[0].discarded and not sinks[0].finished


@pytest.mark.parametrize("wrong", [(1, 0x03, b"\0\0"),  # a command fragment now
                                   (3, 0x00, b"\0\0")])  # another context's PDV
@pytest.mark.parametrize("after", [False, True])  # alone, or after a good fragment in its chunk
def test_a_sequencing_violation_while_sinking_discards_and_raises(
        wrong: tuple[int, int, bytes], after: bool) -> None:
    scu, scp, sinks = _pair()
    pdus = split_pdus(_streamed(scu, b"\0" * 3000, 1000))
    scp.receive_fragments(pdus[:2], 0.0)
    with pytest.raises(RemoteProtocolError):
        scp.receive_fragments([*pdus[2:3][:after], wrong], 0.0)
    assert sinks[0].discarded and not sinks[0].finished


def test_sunk_messages_split_anywhere_give_the_same_data() -> None:
    """A sink's run of PDVs is taken in one call: wherever a chunk ends (mid data
    set, between messages, with the next command in it) every message is whole."""
    scu, _scp, _sinks = _pair(window=2)
    first, second = bytes(range(256)) * 12, b"\x07\x08" * 1500
    pdvs = split_pdus(_streamed(scu, first, 1000) + _streamed(scu, second, 700))
    for cut in range(len(pdvs) + 1):
        _scu, scp, sinks = _pair(window=2)
        got = []
        for chunk in (pdvs[:cut], pdvs[cut:]):
            events = scp.receive_fragments(chunk, 0.0)
            got += [events] if type(events) is ReceivedMessage else events
        assert [sink_of(r) for r in got] == sinks  # type: ignore[arg-type]
        assert [b"".join(sink.parts) for sink in sinks] == [first, second]
        assert all(sink.finished for sink in sinks) and scp.held == 0


def test_a_flood_of_tiny_sunk_fragments_is_refused() -> None:
    scp = DIMSESession(context_ids=[1], min_fragment_average=128)
    sinks: list[ListSink] = []
    scp.set_sink_factory(lambda _id, _message: sinks.append(ListSink()) or sinks[-1])
    command = encode_command(CStoreRQ(MessageID=1, AffectedSOPClassUID=CT,
                                      AffectedSOPInstanceUID="1.2.3", Priority=0),
                             has_dataset=True)
    from aiodimse.dimse.assemble import FLOOD_FREE_FRAGMENTS, FragmentFloodError
    tiny = [(1, 0x00, b"\0\0")] * (FLOOD_FREE_FRAGMENTS + 1)
    with pytest.raises(FragmentFloodError):
        scp.receive_fragments([(1, 0x03, command), *tiny], 0.0)
    assert sinks[0].discarded and len(sinks[0].parts) == FLOOD_FREE_FRAGMENTS


def test_the_sink_factorys_close_is_called_when_the_session_ends() -> None:
    closed: list[bool] = []

    class Factory:
        def __call__(self, context_id: int, message: DIMSEMessage) -> None:
            return None

        def close(self) -> None:
            closed.append(True)

    scp = DIMSESession(context_ids=[1])
    scp.set_sink_factory(Factory())
    scp.end()
    assert closed == [True]


def test_no_sink_keeps_the_usual_path() -> None:
    scu, scp, _sinks = _pair()
    scp.set_sink_factory(None)
    _id, pdus = scu.send_request(1, Store(), b"\0\0" * 10, 0.0, None)
    events = scp.receive_fragments(split_pdus(pdus), 0.0)
    received = events if type(events) is ReceivedMessage else events[0]
    assert isinstance(received, ReceivedMessage)
    assert sink_of(received) is None and bytes(received.dataset or b"") == b"\0\0" * 10


def test_odd_pieces_before_the_last_are_refused() -> None:
    scu, _scp, _sinks = _pair()
    from aiodimse.errors import LocalProtocolError
    with pytest.raises(LocalProtocolError):
        scu.data_pdus(1, b"\0\0\0", False)
