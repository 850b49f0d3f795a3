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
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sop_instance_uid TEXT NOT NULL
);
INSERT INTO "files" VALUES('/archive/a.dcm',1234,1700000000000000000,'1.2.826.0.1.3680043.10.1.1');
CREATE TABLE instances (
    sop_instance_uid TEXT PRIMARY KEY,
    sop_class_uid TEXT NOT NULL,
    path TEXT,
    indexed_at REAL NOT NULL
);
INSERT INTO "instances" VALUES('1.2.826.0.1.3680043.10.1.1','1.2.840.10008.5.1.4.1.1.2','/archive/a.dcm',5.0);
INSERT INTO "instances" VALUES('1.2.826.0.1.3680043.10.1.2','1.2.840.10008.5.1.4.1.1.2',NULL,6.0);
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO "meta" VALUES('index_complete','1');
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
COMMIT;
PRAGMA user_version = 2;
