"""MPPS and commitment storage quotas (issue 18): one client wrote 208 MiB of MPPS in 4.5 s.

Limits per request, per stored instance, and per calling AE and window (counted in the
database, in the write's own transaction); a refusal is 0x0213 and stores nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from aiodimse import AE, Association
from aiodimse.cli.config import ConfigError, build_config
from aiodimse.cli.main import build_parser
from aiodimse.services import MPPS, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE
from aiodimse.services.quotas import Quotas
from aiodimse.store import Allowance, Commitment, Delivery, MPPSRow, QuotaExceeded
from aiodimse.store.sqlite import SQLiteDatabase

from ._helpers import commit_request, running_scp

CT = "1.2.840.10008.5.1.4.1.1.2"


def _row(uid: str, size: int, aet: str = "CT1") -> MPPSRow:
    return MPPSRow(sop_instance_uid=uid, status="IN PROGRESS", dataset="x" * size,
                   calling_aet=aet)


def _count(store: SQLiteDatabase, table: str) -> int:
    return int(store._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_the_allowance_is_counted_per_ae_and_window(tmp_path: Path) -> None:
    store = SQLiteDatabase.in_directory(tmp_path)
    ct = Allowance(calling_aet="CT1", service="mpps", max_bytes=10_000, window=60.0)
    mr = Allowance(calling_aet="MR1", service="mpps", max_bytes=10_000, window=60.0)
    for i in range(4):
        assert store.mpps_create(_row(f"1.{i}", 2_400), 100.0 + i, ct)
    with pytest.raises(QuotaExceeded, match="CT1"):
        store.mpps_create(_row("1.9", 2_400), 110.0, ct)
    assert store.mpps_get("1.9") is None and _count(store, "mpps") == 4  # nothing written
    # an update counts what it writes, in its own transaction
    with pytest.raises(QuotaExceeded):
        store.mpps_update("1.0", lambda row: _row("1.0", 500), 111.0, ct)
    assert store.mpps_get("1.0").dataset == "x" * 2_400  # type: ignore[union-attr]
    assert store.mpps_create(_row("2.0", 9_000, "MR1"), 112.0, mr)  # another AE: its own
    assert store.mpps_create(_row("1.9", 2_400), 160.0, ct)  # a new window
    # a commitment is counted by its refs, apart from MPPS
    c = Allowance(calling_aet="CT1", service="commitment", max_bytes=200, window=60.0)
    refs = ((CT, "1." + "2" * 300),)
    big = Commitment(transaction_uid="9.1", calling_aet="CT1", refs=refs, received_at=170.0)
    report = Delivery(kind="commitment", key="9.1", destination="CT1", sop_class="1.2",
                      sop_instance="1.2.1", payload=json.dumps(refs), created_at=170.0,
                      deadline=1e9, next_attempt=170.0)
    with pytest.raises(QuotaExceeded):
        store.add_commitment(big, report, allowance=c)
    assert _count(store, "commitments") == 0 and _count(store, "deliveries") == 0
    # finished windows are dropped: the table holds the active AEs only
    store.mpps_create(_row("3.0", 10, "US1"), 500.0,
                      Allowance(calling_aet="US1", service="mpps", max_bytes=100, window=60.0))
    aets = {r[0] for r in store._conn.execute("SELECT calling_aet FROM ae_usage "
                                              "WHERE service = 'mpps'")}
    assert aets == {"US1"}
    store.close()


def _ds(**values: Any) -> Dataset:
    ds = Dataset()
    for key, value in values.items():
        setattr(ds, key, value)
    return ds


async def _assoc(port: int, calling: str, *contexts: str) -> Association:
    ae = AE(calling)
    for uid in contexts:
        ae.add_requested_context(uid)
    return await ae.associate("127.0.0.1", port, ae_title="ARCHIVE")


async def test_mpps_requests_instances_and_aes_are_limited(tmp_path: Path) -> None:
    quotas = Quotas(mpps_max_request=4_000, mpps_max_instance=6_000, ae_max_bytes=40_000)
    async with running_scp(tmp_path, quotas=quotas) as scp:
        assoc = await _assoc(scp.server.port, "CT1", MPPS)
        try:
            status, _ = await assoc.send_n_create(
                _ds(PerformedProcedureStepStatus="IN PROGRESS", PatientComments="c" * 5_000),
                MPPS, str(generate_uid()))
            assert status.Status == 0x0213  # the request
            uid = str(generate_uid())
            status, _ = await assoc.send_n_create(
                _ds(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, uid)
            assert status.Status == 0
            for keyword in ("PatientComments", "ImageComments"):
                status, _ = await assoc.send_n_set(_ds(**{keyword: "c" * 3_000}), MPPS, uid)
            assert status.Status == 0x0213  # the stored instance would pass 6,000 bytes
            _, reply = await assoc.send_n_get(None, MPPS, uid)
            assert reply is not None and "ImageComments" not in reply
            statuses = []
            for _ in range(40):  # ~3 kB each against 40 kB an hour
                status, _ = await assoc.send_n_create(
                    _ds(PerformedProcedureStepStatus="IN PROGRESS", PatientComments="c" * 3_000),
                    MPPS, str(generate_uid()))
                statuses.append(int(status.Status))
            assert 0x0213 in statuses and set(statuses) == {0, 0x0213}
            assert statuses.count(0) < 13
        finally:
            await assoc.release()
        other = await _assoc(scp.server.port, "MR1", MPPS)
        try:
            status, _ = await other.send_n_create(
                _ds(PerformedProcedureStepStatus="IN PROGRESS"), MPPS, str(generate_uid()))
            assert status.Status == 0  # another calling AE is not held back
        finally:
            await other.release()


async def test_commitment_requests_are_limited(tmp_path: Path) -> None:
    quotas = Quotas(commitment_max_request=2_000, ae_max_bytes=3_000)
    async with running_scp(tmp_path, quotas=quotas) as scp:
        assoc = await _assoc(scp.server.port, "CT1", STORAGE_COMMITMENT)
        try:
            async def action(refs: int) -> int:
                request = commit_request(str(generate_uid()),
                                         [(CT, f"1.2.3.{i}") for i in range(refs)])
                status, _ = await assoc.send_n_action(
                    request, 1, STORAGE_COMMITMENT, STORAGE_COMMITMENT_INSTANCE)
                return int(status.Status)

            assert await action(40) == 0x0213  # over 2,000 bytes as received
            statuses = [await action(10) for _ in range(12)]  # ~480 bytes stored each
            assert statuses.count(0) >= 4 and statuses[-1] == 0x0213  # past the AE's 3,000
        finally:
            await assoc.release()


def test_quotas_in_serve_toml(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text("[quotas]\nmpps_max_request = 1000\nae_max_bytes = 0\nae_window = 60\n")
    config = build_config(build_parser().parse_args(["serve", "--config", str(path)]))
    assert config.quotas == Quotas(mpps_max_request=1000, ae_max_bytes=0, ae_window=60)
    assert config.quotas.allowance("CT1", "mpps") is None  # 0: no limit
    assert build_config(build_parser().parse_args(["serve"])).quotas == Quotas()
    path.write_text("[quotas]\nmax_everything = 1\n")
    with pytest.raises(ConfigError, match="max_everything"):
        build_config(build_parser().parse_args(["serve", "--config", str(path)]))
