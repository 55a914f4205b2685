//! Schema migrations, applied in order by `instadns db migrate` and on start.
//! A migration is never edited once released: add a new one.

/// (version, SQL) pairs for SQLite.
pub const SQLITE_MIGRATIONS: &[(u32, &str)] = &[(1, SQLITE_V1)];

const SQLITE_V1: &str = r#"
CREATE TABLE zones (
    id INTEGER PRIMARY KEY,
    apex TEXT NOT NULL UNIQUE,
    soa_mname TEXT NOT NULL,
    soa_rname TEXT NOT NULL,
    soa_serial INTEGER NOT NULL DEFAULT 1,
    soa_refresh INTEGER NOT NULL DEFAULT 3600,
    soa_retry INTEGER NOT NULL DEFAULT 600,
    soa_expire INTEGER NOT NULL DEFAULT 604800,
    soa_minimum INTEGER NOT NULL DEFAULT 60,
    soa_ttl INTEGER NOT NULL DEFAULT 3600,
    ns_ttl INTEGER NOT NULL DEFAULT 3600
);
CREATE TABLE zone_ns (
    zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    nsdname TEXT NOT NULL,
    PRIMARY KEY (zone_id, nsdname)
);
CREATE TABLE records (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rtype TEXT NOT NULL,
    ttl INTEGER NOT NULL,
    rdata TEXT NOT NULL
);
CREATE INDEX records_zone ON records(zone_id);
CREATE TABLE clusters (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- How host names answer the cluster's addresses: all in a fixed order, or all
    -- rotated per response (round robin).
    address_order TEXT NOT NULL DEFAULT 'fixed' CHECK (address_order IN ('fixed', 'rotate'))
);
CREATE TABLE cluster_services (
    cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (cluster_id, service)
);
CREATE TABLE cluster_addresses (
    cluster_id INTEGER NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (cluster_id, address)
);
CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    name TEXT,
    owner TEXT,
    cluster_id INTEGER NOT NULL REFERENCES clusters(id),
    ttl INTEGER,
    UNIQUE (owner, name)
);
CREATE INDEX instances_owner ON instances(owner);
CREATE TABLE name_rules (
    id INTEGER PRIMARY KEY,
    zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    pattern TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('service', 'host')),
    ttl INTEGER NOT NULL,
    UNIQUE (zone_id, pattern)
);
"#;
