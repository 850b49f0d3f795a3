"""MPPSSCP in-process: the rules of PS3.4 F.7 and updates that do not lose each other."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Association
from aiodimse.services import MPPS

from ._helpers import running_scp


def _ds(**values: str) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


async def _assoc(port: int) -> Association:
    ae = AE("CT1")
    ae.add_requested_context(MPPS)
    return await ae.associate("127.0.0.1", port, ae_title="ARCHIVE")


async def test_create_rules_and_assigned_uid(tmp_path: Path) -> None:
    async with running_scp(tmp_path) as scp:
        assoc = await _assoc(scp.server.port)
        try:
            status, _ = await assoc.send_n_create(_ds(PatientID="P"), MPPS, str(generate_uid()))
            assert status.Status == 0x0106  # no status at all
            assert status.OffendingElement == 0x00400252
            status, reply = await assoc.send_n_create(
                _ds(PerformedProcedureStepStatus="IN PROGRESS"), MPPS
            )
            assert status.Status == 0
            uid = status.AffectedSOPInstanceUID  # the SCP chose it
            status, reply = await assoc.send_n_get(None, MPPS, uid)
            assert status.Status == 0 and reply is not None
            assert reply.PerformedProcedureStepStatus == "IN PROGRESS"
        finally:
            await assoc.release()


async def test_set_rules(tmp_path: Path) -> None:
    async with running_scp(tmp_path) as scp:
        assoc = await _assoc(scp.server.port)
        try:
            uid = str(generate_uid())
            status, _ = await assoc.send_n_set(_ds(PatientID="X"), MPPS, uid)
            assert status.Status == 0x0112
            await assoc.send_n_create(_ds(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, uid)
            status, _ = await assoc.send_n_set(
                _ds(PerformedProcedureStepStatus="PAUSED"), MPPS, uid
            )
            assert status.Status == 0x0106
            status, _ = await assoc.send_n_set(
                _ds(PerformedProcedureStepStatus="DISCONTINUED"), MPPS, uid
            )
            assert status.Status == 0
            status, _ = await assoc.send_n_set(
                _ds(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, uid
            )
            assert status.Status == 0x0110  # final: no going back
            # N-GET of an attribute without a value answers it empty.
            status, reply = await assoc.send_n_get([0x00100010], MPPS, uid)
            assert status.Status == 0 and reply is not None
            assert 0x00100010 in reply and reply.PatientName == ""
        finally:
            await assoc.release()


async def test_concurrent_sets_keep_every_change(tmp_path: Path) -> None:
    async with running_scp(tmp_path) as scp:
        uid = str(generate_uid())
        first = await _assoc(scp.server.port)
        await first.send_n_create(_ds(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, uid)
        others = [await _assoc(scp.server.port) for _ in range(4)]
        keywords = ["PatientID", "PatientName", "StudyID", "PerformedStationName"]
        try:
            results = await asyncio.gather(*(
                a.send_n_set(_ds(**{kw: "V"}), MPPS, uid)
                for a, kw in zip(others, keywords, strict=True)
            ))
            assert [int(s.Status) for s, _ in results] == [0, 0, 0, 0]
            _status, reply = await first.send_n_get(None, MPPS, uid)
            assert reply is not None
            assert all(reply.get(kw) == "V" for kw in keywords)
        finally:
            for a in [first, *others]:
                await a.release()
