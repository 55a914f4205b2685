//! The schema, as ordered migrations for SQLite and PostgreSQL, applied by
//! `instadns db migrate` and on start. A released migration is never edited: add one.
//!
//! Every table whose rows shape answers is watched: triggers append what changed to
//! `changes` (and, in PostgreSQL, NOTIFY `instadns_changes`), whoever wrote it (the
//! CLI, another process, another node), so the daemon invalidates exactly the answers
//! that depend on it.

/// Refuses to run against a schema newer than this binary knows.
pub fn check_schema_version(current: u32, migrations: &[(u32, String)]) -> Result<(), super::StoreError> {
    let newest = migrations.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(super::StoreError::Invalid(format!(
            "the database schema is version {current}, newer than this binary knows ({newest}): upgrade instadns"
        )));
    }
    Ok(())
}

/// Watched tables and the column that identifies what changed.
pub const WATCHED: &[(&str, &str)] = &[
    ("zones", "id"),
    ("zone_ns", "zone_id"),
    ("records", "zone_id"),
    ("name_rules", "zone_id"),
    ("clusters", "id"),
    ("cluster_services", "cluster_id"),
    ("cluster_addresses", "cluster_id"),
    ("instances", "id"),
    ("domains", "instance_id"),
    ("acme_challenges", "name"),
    ("tombstones", "instance_id"),
    ("cluster_checks", "cluster_id"),
    ("territories", "id"),
    ("territory_prefixes", "territory_id"),
    ("tsig_keys", "name"),
];

/// Version 1 watched every table above up to `tombstones`; version 2 adds the steering
/// tables, version 4 the keys.
const WATCHED_V1: usize = 11;
const WATCHED_V2: usize = 14;

/// The PostgreSQL NOTIFY channel.
pub const CHANGE_CHANNEL: &str = "instadns_changes";

/// Tables in both dialects. `{id}` is the auto-numbered key, `{int}` a 64-bit integer,
/// `{now}` the current Unix time.
const TABLES: &str = r#"
CREATE TABLE zones (
    id {id},
    apex TEXT NOT NULL UNIQUE,
    soa_mname TEXT NOT NULL,
    soa_rname TEXT NOT NULL,
    soa_serial {int} NOT NULL DEFAULT 1,
    soa_refresh {int} NOT NULL DEFAULT 3600,
    soa_retry {int} NOT NULL DEFAULT 600,
    soa_expire {int} NOT NULL DEFAULT 604800,
    soa_minimum {int} NOT NULL DEFAULT 60,
    soa_ttl {int} NOT NULL DEFAULT 3600,
    ns_ttl {int} NOT NULL DEFAULT 3600,
    -- TTL of static records imported without one.
    default_ttl {int} NOT NULL DEFAULT 3600
);
CREATE TABLE zone_ns (
    zone_id {int} NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    nsdname TEXT NOT NULL,
    PRIMARY KEY (zone_id, nsdname)
);
CREATE TABLE records (
    id {id},
    zone_id {int} NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rtype TEXT NOT NULL,
    ttl {int} NOT NULL,
    rdata TEXT NOT NULL
);
CREATE INDEX records_zone ON records (zone_id);
CREATE TABLE clusters (
    id {id},
    name TEXT NOT NULL UNIQUE,
    -- How host names answer the cluster's addresses: all in a fixed order, or all
    -- rotated per response (round robin).
    address_order TEXT NOT NULL DEFAULT 'fixed' CHECK (address_order IN ('fixed', 'rotate'))
);
CREATE TABLE cluster_services (
    cluster_id {int} NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    service TEXT NOT NULL,
    target TEXT NOT NULL,
    PRIMARY KEY (cluster_id, service)
);
CREATE TABLE cluster_addresses (
    cluster_id {int} NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (cluster_id, address)
);
CREATE TABLE instances (
    -- The platform's own, immutable instance id.
    id {int} PRIMARY KEY,
    name TEXT,
    owner TEXT,
    cluster_id {int} NOT NULL REFERENCES clusters(id),
    ttl {int},
    UNIQUE (owner, name)
);
CREATE INDEX instances_cluster ON instances (cluster_id);
CREATE TABLE name_rules (
    id {id},
    zone_id {int} NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
    pattern TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('service', 'host', 'tombstone')),
    ttl {int} NOT NULL,
    UNIQUE (zone_id, pattern)
);
CREATE TABLE domains (
    hostname TEXT PRIMARY KEY,
    instance_id {int} NOT NULL REFERENCES instances(id) ON DELETE CASCADE
);
CREATE INDEX domains_instance ON domains (instance_id);
CREATE TABLE acme_challenges (
    id {id},
    -- The name whose certificate is being validated: answers go to _acme-challenge.<name>.
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('txt', 'cname')),
    value TEXT NOT NULL,
    ttl {int} NOT NULL DEFAULT 60,
    -- Unix time after which a TXT value is no longer served (NULL: until cleared).
    expires_at {int},
    UNIQUE (name, kind, value)
);
CREATE INDEX acme_name ON acme_challenges (name);
CREATE TABLE tombstones (
    id {id},
    instance_id {int} NOT NULL,
    from_cluster TEXT NOT NULL,
    to_cluster TEXT NOT NULL,
    moved_at {int} NOT NULL
);
CREATE INDEX tombstones_instance ON tombstones (instance_id);
CREATE TABLE changes (
    id {id},
    tbl TEXT NOT NULL,
    row_key TEXT NOT NULL,
    -- I insert, U update, D delete.
    op TEXT NOT NULL,
    -- What else identifies the names the row produces: an instance's "owner name" (for
    -- an update both the old and the new), a domain's hostname.
    detail TEXT,
    at {int} NOT NULL DEFAULT {now}
);
CREATE INDEX changes_at ON changes (at);
"#;

/// Version 2: traffic steering. Per cluster: one address or all (`pick`), what to answer
/// when every health-checked address is down (`fallback`), the health check; per
/// address: a weight, a failover queue position, a territory (directional answers).
const STEERING: &str = r#"
ALTER TABLE clusters ADD COLUMN pick TEXT NOT NULL DEFAULT 'all' CHECK (pick IN ('all', 'one'));
ALTER TABLE clusters ADD COLUMN fallback TEXT NOT NULL DEFAULT 'all' CHECK (fallback IN ('all', 'last'));
CREATE TABLE territories (
    id {id},
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE territory_prefixes (
    territory_id {int} NOT NULL REFERENCES territories(id) ON DELETE CASCADE,
    -- An IPv4 or IPv6 network in CIDR notation, host bits zero.
    prefix TEXT NOT NULL,
    PRIMARY KEY (territory_id, prefix)
);
-- Weighted picks: an address's share is its weight over the sum (0: never picked).
ALTER TABLE cluster_addresses ADD COLUMN weight {int} NOT NULL DEFAULT 1 CHECK (weight >= 0 AND weight <= 1000000);
-- Failover: addresses of the lowest queue position with a healthy member are answered.
ALTER TABLE cluster_addresses ADD COLUMN queue {int} NOT NULL DEFAULT 0 CHECK (queue >= 0);
-- Directional: the territory whose clients get this address (NULL: everyone else).
ALTER TABLE cluster_addresses ADD COLUMN territory TEXT REFERENCES territories(name);
CREATE TABLE cluster_checks (
    cluster_id {int} PRIMARY KEY REFERENCES clusters(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('tcp', 'http')),
    port {int} NOT NULL CHECK (port > 0 AND port < 65536),
    -- HTTP: the path requested, the Host header (NULL: the address), the status expected.
    path TEXT NOT NULL DEFAULT '/',
    host TEXT,
    expect_status {int} NOT NULL DEFAULT 200,
    interval_ms {int} NOT NULL DEFAULT 5000 CHECK (interval_ms >= 100),
    timeout_ms {int} NOT NULL DEFAULT 2000 CHECK (timeout_ms >= 10),
    -- Consecutive successes that bring a down address up, failures that take it down.
    rise {int} NOT NULL DEFAULT 2 CHECK (rise >= 1),
    fall {int} NOT NULL DEFAULT 3 CHECK (fall >= 1)
);
"#;

/// Version 3: SOA serials follow the data. Every write transaction of ours bumps the
/// serial of each zone its changes affect, once, and marks those change rows done
/// (`store::serials`); rows logged before this version count as done.
const SERIALS: &str = r#"
ALTER TABLE changes ADD COLUMN serial_done {int} NOT NULL DEFAULT 0;
UPDATE changes SET serial_done = 1;
CREATE INDEX changes_serial_pending ON changes (id) WHERE serial_done = 0;
"#;

/// Version 4: TSIG keys (RFC 8945), in the database so every node of a fleet knows them.
/// The scope columns are space-separated lists; empty means every zone, every name.
const KEYS: &str = r#"
CREATE TABLE tsig_keys (
    name TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL
        CHECK (algorithm IN ('hmac-sha1', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512')),
    secret TEXT NOT NULL,
    zones TEXT NOT NULL DEFAULT '',
    names TEXT NOT NULL DEFAULT '',
    operations TEXT NOT NULL DEFAULT 'update transfer query',
    created {int} NOT NULL DEFAULT {now}
);
"#;

/// Version 5: stable territory indices. A territory's index (what the kernel's tries map
/// its networks to and what picks its directional answer) is its own, from 1 to 63,
/// chosen at creation and never shifted by another's removal. Existing territories keep
/// the positions they had (their rank by id).
const TERRITORY_INDICES: &str = r#"
ALTER TABLE territories ADD COLUMN idx {int} CHECK (idx >= 1 AND idx <= 63);
UPDATE territories SET idx = (SELECT COUNT(*) FROM territories t WHERE t.id <= territories.id);
CREATE UNIQUE INDEX territories_idx ON territories (idx);
"#;

/// Version 6: a change feed that cannot lose a change. The log remembers how far it was
/// pruned (a follower whose cursor is older missed changes and reloads everything), and
/// in PostgreSQL a TRUNCATE of a watched table is logged as one change that makes every
/// follower reload, while a TRUNCATE of the log itself is refused.
const CHANGE_LOG_PRUNED: &str = r#"
CREATE TABLE changes_pruned (last_id {int} NOT NULL);
INSERT INTO changes_pruned (last_id) VALUES (0);
"#;

/// Version 7: the fleet's nodes report themselves (`store::nodes`). Not watched: no
/// answer depends on them.
const NODES: &str = r#"
CREATE TABLE nodes (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    addresses TEXT NOT NULL,
    started_at {int} NOT NULL,
    last_seen {int} NOT NULL,
    report_every_s {int} NOT NULL,
    map_names {int} NOT NULL,
    map_capacity {int} NOT NULL,
    queries {int} NOT NULL,
    hit_permille {int},
    change_cursor {int} NOT NULL
);
"#;

/// SQLite version 8, PostgreSQL version 9: the HTTP API's tokens (hashed) and its audit
/// log. Not watched: no answer depends on them.
const API: &str = r#"
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    access TEXT NOT NULL CHECK (access IN ('read', 'write')),
    zones TEXT NOT NULL DEFAULT '',
    created {int} NOT NULL
);
CREATE TABLE api_audit (
    id {id},
    at {int} NOT NULL,
    token TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status {int} NOT NULL,
    request TEXT NOT NULL
);
"#;

const SQLITE_ID: &str = "INTEGER PRIMARY KEY AUTOINCREMENT";
const POSTGRES_ID: &str = "BIGSERIAL PRIMARY KEY";

fn tables(id: &str, int: &str, now: &str) -> String {
    TABLES.replace("{id}", id).replace("{int}", int).replace("{now}", now)
}

/// The `detail` of a table's change rows, as an SQL expression over `row` (NEW or OLD).
fn detail(table: &str, row: &str) -> String {
    match table {
        "instances" => format!("COALESCE({row}.owner, '') || ' ' || COALESCE({row}.name, '')"),
        "domains" => format!("{row}.hostname"),
        _ => "NULL".to_owned(),
    }
}

fn sqlite_v1() -> String {
    let mut sql = tables(SQLITE_ID, "INTEGER", "(unixepoch())");
    sql += &sqlite_triggers(&WATCHED[..WATCHED_V1]);
    sql
}

fn sqlite_triggers(watched: &[(&str, &str)]) -> String {
    let mut sql = String::new();
    for (table, key) in watched {
        let log = |row: &str, op: &str| {
            format!(
                "INSERT INTO changes (tbl, row_key, op, detail) VALUES ('{table}', {row}.{key}, '{op}', {});",
                detail(table, row)
            )
        };
        sql += &format!(
            "CREATE TRIGGER {table}_ins AFTER INSERT ON {table} BEGIN {} END;\n\
             CREATE TRIGGER {table}_upd AFTER UPDATE ON {table} BEGIN {} {} END;\n\
             CREATE TRIGGER {table}_del AFTER DELETE ON {table} BEGIN {} END;\n",
            log("NEW", "I"),
            log("OLD", "U"),
            log("NEW", "U"),
            log("OLD", "D"),
        );
    }
    sql
}

/// Upgrades the first layout of version 1 (before the control plane: no change log,
/// custom domains, challenges or tombstones; no `default_ttl`, `address_order` or
/// tombstone rules) in place, keeping every row: SQLite databases created by the first
/// releases. Run in the migration's transaction when version 1 lacks the change log.
/// The very first of them lacks `clusters.address_order` too (`has_address_order`).
pub fn sqlite_upgrade_first_layout(has_address_order: bool) -> String {
    let mut sql = String::from("ALTER TABLE zones ADD COLUMN default_ttl INTEGER NOT NULL DEFAULT 3600;\n");
    if !has_address_order {
        sql += "ALTER TABLE clusters ADD COLUMN address_order TEXT NOT NULL DEFAULT 'fixed'
                    CHECK (address_order IN ('fixed', 'rotate'));\n";
    }
    sql += "CREATE TABLE name_rules_upgraded (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             zone_id INTEGER NOT NULL REFERENCES zones(id) ON DELETE CASCADE,
             pattern TEXT NOT NULL,
             kind TEXT NOT NULL CHECK (kind IN ('service', 'host', 'tombstone')),
             ttl INTEGER NOT NULL,
             UNIQUE (zone_id, pattern)
         );
         INSERT INTO name_rules_upgraded (id, zone_id, pattern, kind, ttl)
             SELECT id, zone_id, pattern, kind, ttl FROM name_rules;
         DROP TABLE name_rules;
         ALTER TABLE name_rules_upgraded RENAME TO name_rules;
         DROP INDEX IF EXISTS instances_owner;\n";
    // Everything else of version 1 that is missing: tables, indexes, triggers.
    sql += &sqlite_v1()
        .replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
        .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ")
        .replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ");
    sql
}

fn postgres_v1() -> String {
    let mut sql = tables(POSTGRES_ID, "BIGINT", "(extract(epoch FROM now())::bigint)");
    sql += &format!(
        r#"
CREATE FUNCTION instadns_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    tbl TEXT := TG_TABLE_NAME;
    o TEXT := substr(TG_OP, 1, 1);
    r JSONB;
    cid BIGINT;
BEGIN
    -- An update logs the old row first (its names go away), then the new one.
    FOREACH r IN ARRAY (CASE TG_OP
            WHEN 'INSERT' THEN ARRAY[to_jsonb(NEW)]
            WHEN 'DELETE' THEN ARRAY[to_jsonb(OLD)]
            ELSE ARRAY[to_jsonb(OLD), to_jsonb(NEW)] END) LOOP
        INSERT INTO changes (tbl, row_key, op, detail)
        VALUES (tbl, r ->> TG_ARGV[0], o, CASE tbl
                WHEN 'instances' THEN COALESCE(r ->> 'owner', '') || ' ' || COALESCE(r ->> 'name', '')
                WHEN 'domains' THEN r ->> 'hostname'
                ELSE NULL END)
        RETURNING id INTO cid;
        PERFORM pg_notify('{CHANGE_CHANNEL}', cid::text);
    END LOOP;
    RETURN NULL;
END
$fn$;
"#
    );
    sql += &postgres_triggers(&WATCHED[..WATCHED_V1]);
    sql
}

fn postgres_triggers(watched: &[(&str, &str)]) -> String {
    let mut sql = String::new();
    for (table, key) in watched {
        sql += &format!(
            "CREATE TRIGGER {table}_change AFTER INSERT OR UPDATE OR DELETE ON {table} \
             FOR EACH ROW EXECUTE FUNCTION instadns_change('{key}');\n"
        );
    }
    sql
}

fn sqlite_v2() -> String {
    let mut sql = STEERING.replace("{id}", SQLITE_ID).replace("{int}", "INTEGER");
    sql += &sqlite_triggers(&WATCHED[WATCHED_V1..WATCHED_V2]);
    sql
}

fn postgres_v2() -> String {
    let mut sql = STEERING.replace("{id}", POSTGRES_ID).replace("{int}", "BIGINT");
    sql += &postgres_triggers(&WATCHED[WATCHED_V1..WATCHED_V2]);
    sql
}

fn postgres_v6() -> String {
    let mut sql = CHANGE_LOG_PRUNED.replace("{int}", "BIGINT");
    sql += &format!(
        r#"
CREATE FUNCTION instadns_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    cid BIGINT;
BEGIN
    -- Row triggers do not see a TRUNCATE: one change says the whole table changed.
    -- Serials are not bumped for it (no row says which zones it touched).
    INSERT INTO changes (tbl, row_key, op, serial_done) VALUES (TG_TABLE_NAME, '0', 'T', 1)
        RETURNING id INTO cid;
    PERFORM pg_notify('{CHANGE_CHANNEL}', cid::text);
    RETURN NULL;
END
$fn$;
CREATE FUNCTION instadns_refuse_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of the change log is refused: the nodes following it would miss changes; prune it with `instadns db prune`';
END
$fn$;
CREATE TRIGGER changes_truncate BEFORE TRUNCATE ON changes
    FOR EACH STATEMENT EXECUTE FUNCTION instadns_refuse_log_truncate();
"#
    );
    for (table, _) in WATCHED {
        sql += &format!(
            "CREATE TRIGGER {table}_truncate AFTER TRUNCATE ON {table} \
             FOR EACH STATEMENT EXECUTE FUNCTION instadns_truncate();\n"
        );
    }
    sql
}

fn sqlite_v4() -> String {
    KEYS.replace("{int}", "INTEGER").replace("{now}", "(unixepoch())")
        + &sqlite_triggers(&WATCHED[WATCHED_V2..])
}

fn postgres_v4() -> String {
    KEYS.replace("{int}", "BIGINT").replace("{now}", "(extract(epoch FROM now())::bigint)")
        + &postgres_triggers(&WATCHED[WATCHED_V2..])
}

/// PostgreSQL version 8: a TRUNCATE of a watched table also bumps the serial of every
/// zone (no row says which zones it touched, so all of them may answer differently),
/// so secondaries following by NOTIFY and transfers see it.
fn postgres_v8() -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION instadns_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    cid BIGINT;
BEGIN
    -- Row triggers do not see a TRUNCATE: one change says the whole table changed.
    INSERT INTO changes (tbl, row_key, op, serial_done) VALUES (TG_TABLE_NAME, '0', 'T', 1)
        RETURNING id INTO cid;
    UPDATE zones SET soa_serial = (soa_serial + 1) % 4294967296;
    PERFORM pg_notify('{CHANGE_CHANNEL}', cid::text);
    RETURN NULL;
END
$fn$;
"#
    )
}

/// (version, SQL) for SQLite, in order.
pub fn sqlite_migrations() -> Vec<(u32, String)> {
    vec![
        (1, sqlite_v1()),
        (2, sqlite_v2()),
        (3, SERIALS.replace("{int}", "INTEGER")),
        (4, sqlite_v4()),
        (5, TERRITORY_INDICES.replace("{int}", "INTEGER")),
        // SQLite has no TRUNCATE: a DELETE without WHERE runs the row triggers.
        (6, CHANGE_LOG_PRUNED.replace("{int}", "INTEGER")),
        (7, NODES.replace("{int}", "INTEGER")),
        (8, API.replace("{int}", "INTEGER").replace("{id}", SQLITE_ID)),
    ]
}

/// (version, SQL) for PostgreSQL, in order.
pub fn postgres_migrations() -> Vec<(u32, String)> {
    vec![
        (1, postgres_v1()),
        (2, postgres_v2()),
        (3, SERIALS.replace("{int}", "BIGINT")),
        (4, postgres_v4()),
        (5, TERRITORY_INDICES.replace("{int}", "BIGINT")),
        (6, postgres_v6()),
        (7, NODES.replace("{int}", "BIGINT")),
        (8, postgres_v8()),
        (9, API.replace("{int}", "BIGINT").replace("{id}", POSTGRES_ID)),
    ]
}
