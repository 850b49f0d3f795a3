"""Values validated where the standard says (issue 18), against a running server.

The library answers 0x0117 for a request whose SOP Instance UID is no UID, and 0x0110
for N-SET without its Modification List, before any handler runs; the services
refuse what they need and did not get, and values pydicom would warn about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Association, Event, evt
from aiodimse.dimse import NSetRQ
from aiodimse.scu import _Command
from aiodimse.services import MPPS, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE

from ._helpers import commit_request, running_scp

# The test's own SCU sets the invalid values on purpose, and pydicom warns as it does
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR:UserWarning",
                                        "ignore:The value length:UserWarning")

CT = "1.2.840.10008.5.1.4.1.1.2"
SEEN = [  # what N-CREATE stored on bf678e1
    "1.2.abc",
    "../../x",
    "1" + ".2" * 4999,  # 9,999 characters
    "1.2.826.0.1.3680043.8.498." + "1" * 42,  # 68 characters, from a modality simulator
    "1.2.03.4",
]


def _ds(**values: Any) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


async def _assoc(port: int, *contexts: str) -> Association:
    ae = AE("CT1")
    for uid in contexts:
        ae.add_requested_context(uid)
    return await ae.associate("127.0.0.1", port, ae_title="ARCHIVE")


async def _n_set_without_data_set(assoc: Association, uid: str) -> int:
    ctx = assoc._context_for(MPPS, None)
    command = _Command(lambda i: NSetRQ(MessageID=i, RequestedSOPClassUID=MPPS,
                                        RequestedSOPInstanceUID=uid))
    received = await assoc._request(ctx, command, None)
    return int(received.message.Status)  # type: ignore[attr-defined]


async def test_the_library_answers_0117_before_any_handler(tmp_path: Path) -> None:
    calls: list[str] = []

    def handler(event: Event) -> tuple[int, None]:
        calls.append(event.event.name)
        return 0, None

    ae = AE("ARCHIVE")
    ae.add_supported_context(MPPS)
    handlers = [(e, handler) for e in (evt.EVT_N_ACTION, evt.EVT_N_CREATE, evt.EVT_N_SET,
                                       evt.EVT_N_GET)]
    server = await ae.start_server(("127.0.0.1", 0), evt_handlers=handlers)
    try:
        assoc = await _assoc(server.port, MPPS)
        try:
            for uid in SEEN:
                status, _ = await assoc.send_n_create(_ds(PatientID="P"), MPPS, uid)
                assert status.Status == 0x0117
                status, _ = await assoc.send_n_set(_ds(PatientID="P"), MPPS, uid)
                assert status.Status == 0x0117
                status, _ = await assoc.send_n_action(_ds(PatientID="P"), 1, MPPS, uid)
                assert status.Status == 0x0117
                status, _ = await assoc.send_n_get(None, MPPS, uid)
                assert status.Status == 0x0117
            assert await _n_set_without_data_set(assoc, "1.2.3") == 0x0110
            assert calls == []
            # a valid UID, and none at all for N-CREATE (the SCP assigns one): served
            status, _ = await assoc.send_n_set(_ds(PatientID="P"), MPPS, "1.2.3")
            assert status.Status == 0
            status, _ = await assoc.send_n_create(_ds(PatientID="P"), MPPS)
            assert calls == ["EVT_N_SET", "EVT_N_CREATE"]
            assert assoc.is_established  # the association goes on
        finally:
            await assoc.release()
    finally:
        await server.shutdown(1.0)


async def _mpps_rows(scp: Any) -> int:
    def count() -> int:
        return int(scp.store.db._conn.execute("SELECT count(*) FROM mpps").fetchone()[0])
    return await scp.store.call(count)


async def _commitments(scp: Any) -> int:
    def count() -> int:
        row = scp.store.db._conn.execute("SELECT count(*) FROM commitments").fetchone()
        return int(row[0])
    return await scp.store.call(count)


async def test_mpps_stores_no_invalid_instance_uid(tmp_path: Path) -> None:
    async with running_scp(tmp_path) as scp:
        assoc = await _assoc(scp.server.port, MPPS)
        try:
            for uid in SEEN:
                status, _ = await assoc.send_n_create(
                    _ds(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, uid)
                assert status.Status == 0x0117
            assert await _mpps_rows(scp) == 0
            status, _ = await assoc.send_n_create(
                _ds(PerformedProcedureStepStatus="IN PROGRESS"), MPPS)  # the SCP assigns
            assert status.Status == 0 and await _mpps_rows(scp) == 1
        finally:
            await assoc.release()


async def test_mpps_refuses_absent_data_sets_and_invalid_values(tmp_path: Path) -> None:
    async with running_scp(tmp_path) as scp:
        assoc = await _assoc(scp.server.port, MPPS)
        try:
            uid = str(generate_uid())
            status, _ = await assoc.send_n_create(None, MPPS, uid)
            assert status.Status == 0x0120
            bad = _ds(PerformedProcedureStepStatus="IN PROGRESS", StudyInstanceUID="1.2.abc")
            status, _ = await assoc.send_n_create(bad, MPPS, uid)
            assert status.Status == 0x0106 and status.OffendingElement == 0x0020000D
            assert await _mpps_rows(scp) == 0
            ok = _ds(PerformedProcedureStepStatus="IN PROGRESS")
            assert (await assoc.send_n_create(ok, MPPS, uid))[0].Status == 0
            assert await _n_set_without_data_set(assoc, uid) == 0x0110
            status, _ = await assoc.send_n_set(_ds(PatientID="x" * 80), MPPS, uid)
            assert status.Status == 0x0106 and status.OffendingElement == 0x00100020
            status, reply = await assoc.send_n_get(None, MPPS, uid)
            assert status.Status == 0 and reply is not None and "PatientID" not in reply
        finally:
            await assoc.release()


async def _action(port: int, ds: Dataset | None) -> Dataset:
    assoc = await _assoc(port, STORAGE_COMMITMENT)
    try:
        status, _ = await assoc.send_n_action(ds, 1, STORAGE_COMMITMENT,
                                              STORAGE_COMMITMENT_INSTANCE)
        return status
    finally:
        await assoc.release()


@pytest.mark.parametrize("transaction_uid", [
    "1.2.abc", "../../x", "1.2.03", "1." + "2" * 64, "1" + ".2" * (1 << 19),  # 1 MiB
], ids=["letters", "path", "leading-zero", "66-chars", "1-MiB"])
async def test_commitment_refuses_an_invalid_transaction_uid(
    tmp_path: Path, transaction_uid: str
) -> None:
    async with running_scp(tmp_path) as scp:
        status = await _action(scp.server.port, commit_request(transaction_uid, [(CT, "1.2")]))
        assert status.Status == 0x0115
        assert status.OffendingElement == 0x00081195
        assert await _commitments(scp) == 0


async def test_commitment_refuses_absent_information_and_invalid_references(
    tmp_path: Path,
) -> None:
    async with running_scp(tmp_path) as scp:
        port = scp.server.port
        assert (await _action(port, None)).Status == 0x0120
        status = await _action(port, commit_request("1.2.3", [(CT, "1.2.x")]))
        assert status.Status == 0x0115 and status.OffendingElement == 0x00081155
        assert await _commitments(scp) == 0
        assert (await _action(port, commit_request("1.2.3", [(CT, "1.2")]))).Status == 0
        assert await _commitments(scp) == 1
