"""Smoke tests of the benchmark harness: it must measure real, correct exchanges.

No timing assertions: only that every request got the right response, that the
hand-built PDUs are what an independent implementation (pynetdicom) reads, and that
server processes are cleaned up.
"""

from __future__ import annotations

import asyncio
import struct
from io import BytesIO
from typing import Any

import pynetdicom  # noqa: F401 - a test dependency; its absence must fail, not skip
import pytest
from pydicom.filereader import read_dataset
from pynetdicom.dimse_messages import DIMSEMessage
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF

from benchmarks import pdus
from benchmarks.load import DimseClient, LoadSpec, measure
from benchmarks.procs import HOST, server


def _decode_message(data: bytes) -> Any:
    """Feed whole P-DATA-TF PDUs to pynetdicom's DIMSE decoder."""
    msg = DIMSEMessage()
    done = False
    for ptype, body in pdus.split_pdus(data):
        assert ptype == 0x04
        assert len(body) <= pdus.MAX_PDU  # the peer's Maximum Length bounds the PDU-length
        pdu = P_DATA_TF()
        pdu.decode(struct.pack(">BBI", 4, 0, len(body)) + body)
        for item in pdu.presentation_data_value_items:
            value = item.presentation_data_value
            assert value is not None
            assert len(value) % 2 == 1  # header byte + even fragment
        assert not done
        done = msg.decode_msg(pdu.to_primitive())
    assert done
    return msg


def test_associate_rq_decodes_with_pynetdicom() -> None:
    rq = A_ASSOCIATE_RQ()
    rq.decode(pdus.build_associate_rq(window=(8, 8)))
    prim = rq.to_primitive()
    contexts = {
        c.context_id: (c.abstract_syntax, c.transfer_syntax)
        for c in prim.presentation_context_definition_list
    }
    assert contexts == {
        1: (pdus.STGCMT_CLASS, [pdus.IMPLICIT_LE]),
        3: (pdus.VERIFICATION, [pdus.IMPLICIT_LE]),
    }
    assert prim.maximum_length_received == pdus.MAX_PDU
    assert prim.application_context_name == pdus.APP_CONTEXT


def test_ceiling_ac_decodes_with_pynetdicom() -> None:
    ac_bytes = pdus.build_ac_for_rq(pdus.build_associate_rq(window=(8, 8)))
    ac = A_ASSOCIATE_AC()
    ac.decode(ac_bytes)
    prim = ac.to_primitive()
    results = {
        c.context_id: (c.result, c.transfer_syntax)
        for c in prim.presentation_context_definition_results_list
    }
    assert results == {1: (0, [pdus.IMPLICIT_LE]), 3: (0, [pdus.IMPLICIT_LE])}
    assert pdus.parse_ac_window(ac_bytes) == (8, 8)
    assert pdus.parse_ac_window(pdus.build_ac_for_rq(pdus.build_associate_rq())) is None


@pytest.mark.parametrize("n_refs", [1, 10, 1000])
def test_n_action_rq_decodes_with_pynetdicom(n_refs: int) -> None:
    data = pdus.n_action_rq(n_refs).render(4321)
    msg = _decode_message(data)
    cs = msg.command_set
    assert type(msg).__name__ == "N_ACTION_RQ"
    assert msg.context_id == pdus.PC_STGCMT
    assert cs.MessageID == 4321
    assert cs.RequestedSOPClassUID == pdus.STGCMT_CLASS
    assert cs.RequestedSOPInstanceUID == pdus.STGCMT_INSTANCE
    assert cs.ActionTypeID == 1
    assert cs.CommandDataSetType != 0x0101
    # CommandGroupLength counts every command byte after its own element.
    raw = msg.encoded_command_set.getvalue()
    assert struct.unpack_from("<I", raw, 8)[0] == len(raw) - 12
    ds = read_dataset(BytesIO(msg.data_set.getvalue()), is_implicit_VR=True, is_little_endian=True)
    assert len(ds.ReferencedSOPSequence) == n_refs
    last = ds.ReferencedSOPSequence[-1]
    assert last.ReferencedSOPClassUID == pdus.CT_IMAGE_STORAGE
    assert last.ReferencedSOPInstanceUID.endswith(f".{n_refs}")
    assert ds.TransactionUID


@pytest.mark.parametrize(
    ("tpl", "name", "data_set_type"),
    [
        (pdus.n_action_rsp(), "N_ACTION_RSP", 0x0101),
        (pdus.c_echo_rsp(), "C_ECHO_RSP", 0x0101),
        (pdus.c_echo_rq(), "C_ECHO_RQ", 0x0101),
    ],
)
def test_other_messages_decode_with_pynetdicom(
    tpl: pdus.MessageTemplate, name: str, data_set_type: int
) -> None:
    msg = _decode_message(tpl.render(65535))
    assert type(msg).__name__ == name
    cs = msg.command_set
    assert cs.CommandDataSetType == data_set_type
    mid = cs.MessageIDBeingRespondedTo if name.endswith("RSP") else cs.MessageID
    assert mid == 65535
    if name.endswith("RSP"):
        assert cs.Status == 0
    field, parsed_mid, _status, dst = pdus.scan_command(msg.encoded_command_set.getvalue())
    assert (parsed_mid, dst) == (65535, data_set_type)
    assert field == cs.CommandField


def test_ceiling_answers_with_the_right_message_ids() -> None:
    """Drive the ceiling by hand and check each response's MessageIDBeingRespondedTo."""

    async def drive(port: int) -> list[tuple[int, int]]:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(DimseClient, HOST, port)
        seen: list[tuple[int, int]] = []
        got: asyncio.Queue[None] = asyncio.Queue()

        def on_response(mid: int, status: int) -> None:
            seen.append((mid, status))
            got.put_nowait(None)

        client.on_response = on_response
        client.write(pdus.build_associate_rq())
        await asyncio.wait_for(client.ac, 5)
        for mid in (7, 300, 65535):
            client.write(pdus.n_action_rq(1000).render(mid))
            await asyncio.wait_for(got.get(), 5)
        client.write(pdus.c_echo_rq().render(9))
        await asyncio.wait_for(got.get(), 5)
        client.write(pdus.A_RELEASE_RQ)
        await asyncio.wait_for(client.rp, 5)
        assert client.transport is not None
        client.transport.close()
        return seen

    with server("ceiling-test", "benchmarks.servers.ceiling", []) as sp:
        seen = asyncio.run(drive(sp.port))
    assert seen == [(7, 0), (300, 0), (65535, 0), (9, 0)]


@pytest.mark.parametrize(
    ("n_assoc", "per_assoc", "window"),
    [(1, 200, 1), (4, 50, 1), (4, 50, 4)],
)
def test_load_against_ceiling(n_assoc: int, per_assoc: int, window: int) -> None:
    with server("ceiling-test", "benchmarks.servers.ceiling", []) as sp:
        res = measure(
            LoadSpec(
                port=sp.port,
                n_assoc=n_assoc,
                per_assoc=per_assoc,
                window=window,
                propose_window=window if window > 1 else 0,
                n_refs=10,
                duration=20.0,
                loop="asyncio",
            ),
            server_pid=sp.pid,
        )
        proc = sp.proc
    assert proc.poll() is not None  # cleaned up
    assert res.failures == 0, res.errors
    assert res.ok == n_assoc * per_assoc
    assert res.established == n_assoc
    assert res.window == window
    assert res.rate > 0
    assert res.server_hwm_kb > 0


def test_associate_release_cycles_and_floor() -> None:
    with server("ceiling-test", "benchmarks.servers.ceiling", []) as sp:
        res = measure(LoadSpec(mode="assoc", port=sp.port, per_assoc=20, duration=20.0))
    assert (res.ok, res.failures) == (20, 0)
    with server("floor-test", "benchmarks.servers.pingpong", []) as sp:
        res = measure(
            LoadSpec(
                mode="ping", port=sp.port, per_assoc=50, ping_req=1000, ping_rsp=100, duration=20.0
            )
        )
    assert (res.ok, res.failures) == (50, 0)


def test_idle_associations_answer_echo() -> None:
    with server("ceiling-test", "benchmarks.servers.ceiling", []) as sp:
        res = measure(
            LoadSpec(mode="idle", port=sp.port, n_assoc=50, duration=5.0),
            server_pid=sp.pid,
            procs=2,
        )
    assert (res.established, res.ok, res.failures) == (50, 50, 0)


def test_pynetdicom_contender_answers() -> None:
    with server("pynetdicom-test", "benchmarks.servers.pynetdicom_scp", ["--nodelay"]) as sp:
        res = measure(
            LoadSpec(port=sp.port, per_assoc=5, n_refs=10, duration=20.0), server_pid=sp.pid
        )
        proc = sp.proc
    assert proc.poll() is not None
    assert (res.ok, res.failures) == (5, 0), res.errors


def test_aiodimse_contender_answers() -> None:
    with server("aiodimse-test", "benchmarks.servers.aiodimse_scp", ["--read-all"]) as sp:
        res = measure(LoadSpec(port=sp.port, per_assoc=5, n_refs=10, duration=20.0))
    assert (res.ok, res.failures) == (5, 0), res.errors


@pytest.mark.parametrize("name", ["N_GET_RQ", "N_CREATE_RQ", "N_ACTION_RSP", "N_GET_RSP",
                                  "N_CREATE_RSP"])
def test_row_8_messages_decode_with_pynetdicom(name: str) -> None:
    """Row 8's requests and the ceiling's answers with their reply data sets."""
    from benchmarks import replies

    tpl = {
        "N_GET_RQ": replies.n_get_rq(),
        "N_CREATE_RQ": replies.n_create_rq(),
        "N_ACTION_RSP": replies.reply_rsp(pdus.N_ACTION_RQ, pdus.PC_STGCMT),
        "N_GET_RSP": replies.reply_rsp(pdus.N_GET_RQ, replies.PC_MPPS),
        "N_CREATE_RSP": replies.reply_rsp(pdus.N_CREATE_RQ, replies.PC_MPPS),
    }[name]
    assert tpl is not None
    msg = _decode_message(tpl.render(4242))
    assert type(msg).__name__ == name
    cs = msg.command_set
    if name == "N_GET_RQ":
        assert [int(t) for t in cs.AttributeIdentifierList] == list(replies.REQUESTED_TAGS)
        assert cs.RequestedSOPInstanceUID == replies.MPPS_INSTANCE
        return
    ds = read_dataset(BytesIO(msg.data_set.getvalue()), is_implicit_VR=True,
                      is_little_endian=True)
    if name == "N_GET_RSP":
        assert [int(e.tag) for e in ds] == sorted(replies.REQUESTED_TAGS)
    elif name == "N_ACTION_RSP":
        assert ds.TransactionUID and ds.RetrieveAETitle == "BENCH_SCP"
    else:
        assert ds.PerformedProcedureStepStatus == "IN PROGRESS" and "PatientName" in ds
    if name.endswith("RSP"):
        assert cs.Status == 0 and cs.MessageIDBeingRespondedTo == 4242


@pytest.mark.parametrize("op", ["naction", "nget", "ncreate"])
def test_row_8_handlers_answer_or_drop_the_reply_by_mode(op: str) -> None:
    """What each --replies mode's handler returns, on pynetdicom-like events."""
    from types import SimpleNamespace

    from pydicom.dataset import Dataset
    from pydicom.tag import Tag

    from benchmarks import replies

    event = SimpleNamespace(
        request=SimpleNamespace(RequestedSOPInstanceUID=replies.MPPS_INSTANCE,
                                AffectedSOPInstanceUID=replies.MPPS_INSTANCE),
        attribute_identifiers=[Tag(t) for t in replies.REQUESTED_TAGS],
        attribute_list=replies.mpps_attributes(),
    )
    answers = {mode: replies.handlers(mode)[op](event) for mode in replies.MODES}
    assert all(status == 0 for status, _ in answers.values())
    assert answers["none"][1] is None and answers["dropped"][1] is None
    for mode in ("same", "new"):
        assert isinstance(answers[mode][1], Dataset) and len(answers[mode][1])
    if op == "nget":
        assert len(answers["new"][1]) == 20
    if op == "naction":
        same = replies.handlers("same")["naction"]
        assert same(event)[1] is same(event)[1]  # one object for every request
