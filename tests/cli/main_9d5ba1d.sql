BEGIN TRANSACTION;
CREATE TABLE ae_usage (
    calling_aet TEXT NOT NULL,
    service TEXT NOT NULL,
    window_start REAL NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (calling_aet, service)
);
CREATE TABLE commitments (
    transaction_uid TEXT PRIMARY KEY,
    calling_aet TEXT NOT NULL,
    received_at REAL NOT NULL
);
INSERT INTO "commitments" VALUES('1.2.826.0.1.3680043.10.3.1','CT1',100.0);
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    destination TEXT NOT NULL,
    ordering TEXT,
    sop_class TEXT NOT NULL,
    sop_instance TEXT NOT NULL,
    event_type INTEGER NOT NULL DEFAULT 0,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    deadline REAL NOT NULL,
    next_attempt REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    delivered_at REAL,
    result TEXT,
    UNIQUE (kind, key)
);
INSERT INTO "deliveries" VALUES(1,'commitment','1.2.826.0.1.3680043.10.3.1','CT1',NULL,'1.2.840.10008.1.20.1','1.2.840.10008.1.20.1.1',0,'[["1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.1.1"]]','pending',100.0,4102444800.0,100.0,0,'dead-worker',4102444800.0,NULL,NULL,NULL);
CREATE TABLE instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    path TEXT,
    indexed_at REAL NOT NULL
);
INSERT INTO "instances" VALUES('1.2.826.0.1.3680043.10.1.1','1.2.840.10008.5.1.4.1.1.2','/archive/a.dcm',100.0);
CREATE TABLE mpps (
    sop_instance_uid TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    dataset TEXT NOT NULL,
    calling_aet TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (state, next_attempt);
CREATE INDEX deliveries_order ON deliveries (destination, ordering, state, id)
    WHERE ordering IS NOT NULL
;
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('deliveries',1);
COMMIT;
PRAGMA user_version = 1;
