-- A data directory's database as aiodimse main (5a0ed7e, schema version 0) wrote it,
-- dumped with iterdump: the tables are main's DDL text, the rows main's Store wrote.
-- tests/cli/test_serve_upgrade.py serves from it. Made by this script, run with
-- main's aiodimse on the path (PYTHONPATH=<a checkout of 5a0ed7e> python3 make.py X):
--
-- """Writes a database with aiodimse 5a0ed7e's Store (schema version 0) and dumps it."""
-- import sys
-- from pathlib import Path
--
-- from aiodimse.store.db import Allowance, Commitment, MPPSRow, Store
--
-- CT = "1.2.840.10008.5.1.4.1.1.2"
-- path = Path(sys.argv[1])
-- store = Store(path)
-- store.add_instances([(CT, "1.2.826.0.1.3680043.10.1.1", "/srv/dicom/a.dcm"),
--                      (CT, "1.2.826.0.1.3680043.10.1.2", None)], now=1700000000.0)
-- allowance = Allowance(calling_aet="CT1", service="mpps", max_bytes=1 << 20, window=3600)
-- store.mpps_create(MPPSRow(sop_instance_uid="1.2.826.0.1.3680043.10.2.1", status="IN PROGRESS",
--                           dataset='{"00400252": {"vr": "CS", "Value": ["IN PROGRESS"]}}',
--                           calling_aet="CT1"), now=1700000001.0, allowance=allowance)
-- refs = ((CT, "1.2.826.0.1.3680043.10.1.1"), (CT, "1.2.826.0.1.3680043.10.1.9"))
-- for uid, at in (("1.2.826.0.1.3680043.10.3.1", 1700000010.0),
--                 ("1.2.826.0.1.3680043.10.3.2", 1700000020.0),
--                 ("1.2.826.0.1.3680043.10.3.3", 1700000030.0),
--                 ("1.2.826.0.1.3680043.10.3.4", 1700000040.0)):
--     store.add_commitment(Commitment(transaction_uid=uid, calling_aet="CT1", refs=refs,
--                                     received_at=at, deadline=4102444800.0, next_attempt=at),
--                          owner="crashed:1:0", lease_until=at + 180)
-- store.reschedule("1.2.826.0.1.3680043.10.3.1", 1700000100.0, "status 0x0110 from CT1")
-- store.mark_delivered("1.2.826.0.1.3680043.10.3.2", {"event_type": 2, "failed": 1},
--                      1700000021.0)
-- store.expire("1.2.826.0.1.3680043.10.3.3", "refused")
-- store.close()
-- (below: sqlite3.connect(X).iterdump() of the result)
BEGIN TRANSACTION;
CREATE TABLE ae_usage (
    calling_aet TEXT NOT NULL,
    service TEXT NOT NULL,
    window_start REAL NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (calling_aet, service)
);
INSERT INTO "ae_usage" VALUES('CT1','mpps',1700000001.0,52);
CREATE TABLE commitments (
    transaction_uid TEXT PRIMARY KEY,
    calling_aet TEXT NOT NULL,
    refs TEXT NOT NULL,
    state TEXT NOT NULL,
    received_at REAL NOT NULL,
    deadline REAL NOT NULL,
    next_attempt REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    delivered_at REAL,
    result TEXT
);
INSERT INTO "commitments" VALUES('1.2.826.0.1.3680043.10.3.1','CT1','[["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.1"], ["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.9"]]','pending',1700000010.0,4102444800.0,1700000100.0,1,NULL,NULL,'status 0x0110 from CT1',NULL,NULL);
INSERT INTO "commitments" VALUES('1.2.826.0.1.3680043.10.3.2','CT1','[["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.1"], ["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.9"]]','delivered',1700000020.0,4102444800.0,1700000020.0,1,NULL,NULL,NULL,1700000021.0,'{"event_type": 2, "failed": 1}');
INSERT INTO "commitments" VALUES('1.2.826.0.1.3680043.10.3.3','CT1','[["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.1"], ["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.9"]]','expired',1700000030.0,4102444800.0,1700000030.0,1,NULL,NULL,'refused',NULL,NULL);
INSERT INTO "commitments" VALUES('1.2.826.0.1.3680043.10.3.4','CT1','[["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.1"], ["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.9"]]','pending',1700000040.0,4102444800.0,1700000040.0,0,'crashed:1:0',1700000220.0,NULL,NULL,NULL);
CREATE TABLE instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    path TEXT,
    indexed_at REAL NOT NULL
);
INSERT INTO "instances" VALUES('1.2.826.0.1.3680043.10.1.1','1.2.840.10008.5.1.4.1.1.2','/srv/dicom/a.dcm',1700000000.0);
INSERT INTO "instances" VALUES('1.2.826.0.1.3680043.10.1.2','1.2.840.10008.5.1.4.1.1.2',NULL,1700000000.0);
CREATE TABLE mpps (
    sop_instance_uid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    dataset TEXT NOT NULL,
    calling_aet TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
INSERT INTO "mpps" VALUES('1.2.826.0.1.3680043.10.2.1','IN PROGRESS','{"00400252": {"vr": "CS", "Value": ["IN PROGRESS"]}}','CT1',1700000001.0,1700000001.0);
CREATE INDEX commitments_due ON commitments (state, next_attempt);
COMMIT;
