"""Responses with a reply data set: the reused command PDU gives the long path's bytes.

Issue 25: for N-ACTION / N-GET / N-SET / N-EVENT-REPORT the command of a
``(status, Dataset)`` answer is the bare status's but for CommandDataSetType, so the
session keeps it (``WITH_DATASET``) and sends it again, Message ID patched, before
the newly encoded data set. Each reused answer here is checked against the response
built and encoded the usual way for the same request and result.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from aiodimse import caches
from aiodimse.dimse import NActionRQ, NGetRQ, commands, encode_command
from aiodimse.dimse import memo as memo_module
from aiodimse.dimse.fragment import encode_data, encode_message
from aiodimse.dimse.memo import first_pdu
from aiodimse.dimse.session import DIMSESession
from aiodimse.presentation import PresentationContext
from aiodimse.reply_reuse import encoded_reply
from aiodimse.requests import build_response, kind_of
from tests.examples import examples

from .test_session import fragments, requests

MPPS = "1.2.840.10008.3.1.2.3.3"
CONTEXT = PresentationContext(context_id=1, abstract_syntax=MPPS,
                              transfer_syntax="1.2.840.10008.1.2")


@pytest.fixture(autouse=True)
def _fresh_tables() -> Iterator[None]:
    commands._SHAPES.clear()
    memo_module._SHARED.clear()
    yield
    commands._SHAPES.clear()
    memo_module._SHARED.clear()


def reply(n: int) -> Dataset:
    ds = Dataset()
    ds.CommentsOnThePerformedProcedureStep = "P" * n  # (ST: up to 1024)
    ds.PatientName = "Doe^Jane"
    return ds


def long_path(rq: object, result: object, max_pdu: int) -> bytes:
    kind = kind_of(rq)
    assert kind is not None
    rsp, data = build_response(kind, rq, result, CONTEXT)
    return encode_message(CONTEXT.context_id, encode_command(rsp, has_dataset=data is not None),
                          data, max_pdu)


def answer(scp: DIMSESession, received: object, result: object) -> bytes:
    """As serving.answer_built does it for a result with a reply."""
    kind = kind_of(received.message)  # type: ignore[attr-defined]
    assert kind is not None
    encoded = encoded_reply(kind, result, CONTEXT)
    assert encoded is not None
    status, data = encoded
    pdus = scp.respond_reused_with(received, status, data)  # type: ignore[arg-type]
    if pdus is None:
        rsp, _ = build_response(kind, received.message, (status, None), CONTEXT)  # type: ignore[attr-defined]
        pdus = scp.respond(received, rsp, data, status)  # type: ignore[arg-type]
    return pdus


@settings(max_examples=examples(60), deadline=None)
@given(
    ids=st.lists(st.integers(1, 0xFFFF), min_size=2, max_size=5),
    status=st.sampled_from([0x0000, 0xB000, 0x0107, 0x0116]),
    sizes=st.lists(st.integers(0, 300), min_size=5, max_size=5),
    max_pdu=st.sampled_from([0, 128, 16384]),
    get=st.booleans(),
)
def test_reused_reply_responses_equal_the_long_path(
    ids: list[int], status: int, sizes: list[int], max_pdu: int, get: bool
) -> None:
    commands._SHAPES.clear()
    memo_module._SHARED.clear()
    scp = DIMSESession(context_ids=(1,), peer_max_pdu=max_pdu, max_performed=0)
    for i, (message_id, size) in enumerate(zip(ids, sizes[: len(ids)], strict=True)):
        rq = (NGetRQ(MessageID=message_id, RequestedSOPClassUID=MPPS,
                     RequestedSOPInstanceUID="1.2.3.4", AttributeIdentifierList=(0x00100020,))
              if get else NActionRQ(MessageID=message_id, RequestedSOPClassUID=MPPS,
                                    RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=2))
        pdus = encode_message(1, encode_command(rq, has_dataset=not get), None if get else b"",
                              16384)
        [received] = requests(scp.receive_fragments(fragments(pdus), 0.0))
        result = (status, reply(size))
        got = answer(scp, received, result)
        assert got == long_path(received.message, result, max_pdu), i
        assert scp.running == 0


def test_the_second_reply_reuses_the_command_and_the_switch_turns_it_off() -> None:
    """With caches on the memo answers from the second request; off, never: same bytes."""
    def run() -> tuple[list[bytes], list[bool]]:
        commands._SHAPES.clear()
        memo_module._SHARED.clear()
        scp = DIMSESession(context_ids=(1,), peer_max_pdu=16384)
        out, hits = [], []
        for message_id in (7, 8, 9):
            rq = NActionRQ(MessageID=message_id, RequestedSOPClassUID=MPPS,
                           RequestedSOPInstanceUID="1.2.3.4", ActionTypeID=1)
            pdus = encode_message(1, encode_command(rq, has_dataset=True), b"", 16384)
            [received] = requests(scp.receive_fragments(fragments(pdus), 0.0))
            _, data = encoded_reply(kind_of(rq), (0, reply(3)), CONTEXT)  # type: ignore[arg-type, misc]
            hits.append(scp.respond_reused_with(received, 0, data) is not None)
            if not hits[-1]:
                rsp, _ = build_response(kind_of(rq), received.message, (0, None), CONTEXT)  # type: ignore[arg-type]
                out.append(scp.respond(received, rsp, data, 0))
            else:
                out.append(long_path(received.message, (0, reply(3)), 16384))
        return out, hits

    with_caches, hits = run()
    assert hits == [False, True, True]
    caches.disable()
    try:
        without, hits_off = run()
    finally:
        caches.enable()
    assert hits_off == [False, False, False]
    assert with_caches == without


@pytest.mark.parametrize("result", [
    (0x0110, reply(2)),  # not performed: the reply is dropped, the usual way
    (0, Dataset()),  # empty: no data set
    (0, None),
    0,
    (True, reply(1)),
    (0, "not a Dataset"),
    [0, reply(1)],
])
def test_results_other_than_a_performed_status_and_a_reply_go_the_usual_way(
    result: object,
) -> None:
    kind = kind_of(NActionRQ(MessageID=1, RequestedSOPClassUID=MPPS,
                             RequestedSOPInstanceUID="1.2.3", ActionTypeID=1))
    assert kind is not None
    assert encoded_reply(kind, result, CONTEXT) is None


def test_n_create_replies_are_never_reused() -> None:
    """Its response may carry the handler's new instance UID (``reusable`` False)."""
    from aiodimse.dimse import NCreateRQ

    kind = kind_of(NCreateRQ(MessageID=1, AffectedSOPClassUID=MPPS))
    assert kind is not None and not kind.reusable
    assert encoded_reply(kind, (0, reply(2)), CONTEXT) is None


@settings(max_examples=examples(100), deadline=None)
@given(size=st.integers(0, 3000).map(lambda n: n & ~1),
       command=st.integers(1, 60).map(lambda n: 2 * n),
       max_pdu=st.sampled_from([0, 8, 64, 130, 1000, 16384]))
def test_data_pdus_follow_a_one_pdu_command_as_encode_message_sends_them(
    size: int, command: int, max_pdu: int
) -> None:
    cmd, data = bytes(range(command)), bytes(i & 0xFF for i in range(size))
    whole = encode_message(5, cmd, data, max_pdu)
    head = first_pdu(whole)
    if len(head) - 12 == len(cmd):  # the command went in one PDU
        assert head + encode_data(5, data, True, max_pdu) == whole
