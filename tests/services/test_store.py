"""The SQLite store: the instance index, leases between workers, restart semantics."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from aiodimse.store import Commitment, Store, index_paths

CT = "1.2.840.10008.5.1.4.1.1.2"


def _commitment(uid: str, now: float = 100.0) -> Commitment:
    return Commitment(transaction_uid=uid, calling_aet="CT1", refs=((CT, "1.2"),),
                      received_at=now, deadline=now + 1000, next_attempt=now)


def test_index_directory(tmp_path: Path) -> None:
    uids = []
    for i in range(3):
        ds = Dataset()
        ds.SOPClassUID = CT
        ds.SOPInstanceUID = uid = str(generate_uid())
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        (tmp_path / "archive" / str(i)).mkdir(parents=True)
        ds.save_as(tmp_path / "archive" / str(i) / "x.dcm", enforce_file_format=True)
        uids.append(uid)
    (tmp_path / "archive" / "notes.txt").write_text("not DICOM")
    store = Store.in_directory(tmp_path / "data")
    assert index_paths(store, [tmp_path / "archive"], now=1.0) == 3
    assert store.find_instances([*uids, "9.9"]) == dict.fromkeys(uids, CT)
    assert index_paths(store, [tmp_path / "archive"], now=2.0) == 3  # idempotent
    assert store.count_instances() == 3
    store.close()


def test_leases_between_workers(tmp_path: Path) -> None:
    a = Store.in_directory(tmp_path)
    b = Store.in_directory(tmp_path)  # a second connection, as another worker
    assert a.add_commitment(_commitment("1.1"), owner="A", lease_until=160.0)
    assert not b.add_commitment(_commitment("1.1"), owner="B", lease_until=160.0)
    assert b.claim_due("B", now=150.0, lease=60.0, limit=10) == []  # A holds it
    (mine,) = b.claim_due("B", now=170.0, lease=60.0, limit=10)  # A's lease ran out
    assert mine.transaction_uid == "1.1"
    assert a.claim_due("A", now=171.0, lease=60.0, limit=10) == []
    b.reschedule("1.1", next_attempt=500.0, error="refused")
    assert a.commitment_state("1.1") == ("pending", 1, "refused")
    assert a.next_due() == 500.0
    assert a.reset_for_start(now=200.0) == 1  # a fresh start: due at once
    assert a.next_due() == 200.0
    a.mark_delivered("1.1", {"event_type": 1}, now=201.0)
    assert b.commitment_state("1.1") == ("delivered", 2, "refused")
    assert b.next_due() is None
    a.close()
    b.close()
