//! The demo data (README: what the server answers), loaded only on request: `instadns db
//! demo` and `cargo xtask run`. Written without explicit serial ids so it runs on both
//! SQLite and PostgreSQL.

use super::{Database, StoreError, sql::Statement};

pub const DEMO_SQL: &str = r#"
INSERT INTO zones (apex, soa_mname, soa_rname, soa_serial, soa_minimum, soa_ttl, ns_ttl) VALUES
    ('example.com.', 'ns1.example.com.', 'hostmaster.example.com.', 1, 60, 3600, 3600),
    ('example.org.', 'ns1.example.com.', 'hostmaster.example.com.', 1, 60, 3600, 3600);
INSERT INTO zone_ns (zone_id, nsdname) SELECT id, 'ns1.example.com.' FROM zones;
INSERT INTO zone_ns (zone_id, nsdname) SELECT id, 'ns2.example.com.' FROM zones;
INSERT INTO records (zone_id, name, rtype, ttl, rdata)
    SELECT id, 'ns1.example.com.', 'A', 3600, '192.0.2.53' FROM zones WHERE apex = 'example.com.';
INSERT INTO records (zone_id, name, rtype, ttl, rdata)
    SELECT id, 'ns2.example.com.', 'A', 3600, '192.0.2.54' FROM zones WHERE apex = 'example.com.';
INSERT INTO records (zone_id, name, rtype, ttl, rdata)
    SELECT id, 'ws-mt1.example.com.', 'A', 300, '192.0.2.11' FROM zones WHERE apex = 'example.com.';
INSERT INTO records (zone_id, name, rtype, ttl, rdata)
    SELECT id, 'ws-mt2.example.com.', 'A', 300, '192.0.2.12' FROM zones WHERE apex = 'example.com.';
INSERT INTO clusters (name) VALUES ('mt1'), ('mt2');
INSERT INTO cluster_services (cluster_id, service, target) SELECT id, 'ws', 'ws-' || name || '.example.com.' FROM clusters;
INSERT INTO cluster_addresses (cluster_id, address) SELECT id, '192.0.2.1' FROM clusters WHERE name = 'mt1';
INSERT INTO cluster_addresses (cluster_id, address) SELECT id, '2001:db8::1' FROM clusters WHERE name = 'mt1';
INSERT INTO cluster_addresses (cluster_id, address) SELECT id, '192.0.2.2' FROM clusters WHERE name = 'mt2';
INSERT INTO cluster_addresses (cluster_id, address) SELECT id, '2001:db8::2' FROM clusters WHERE name = 'mt2';
INSERT INTO instances (id, name, owner, cluster_id) SELECT 123456, 'blog', 'alice', id FROM clusters WHERE name = 'mt1';
INSERT INTO instances (id, name, owner, cluster_id) SELECT 234567, 'shop', 'bob', id FROM clusters WHERE name = 'mt2';
INSERT INTO name_rules (zone_id, pattern, kind, ttl)
    SELECT id, '{service}-{id}.apps', 'service', 300 FROM zones WHERE apex = 'example.com.';
INSERT INTO name_rules (zone_id, pattern, kind, ttl)
    SELECT id, '{name}.{owner}', 'host', 60 FROM zones WHERE apex = 'example.org.';
INSERT INTO name_rules (zone_id, pattern, kind, ttl)
    SELECT id, '{id}', 'host', 60 FROM zones WHERE apex = 'example.org.';
INSERT INTO name_rules (zone_id, pattern, kind, ttl)
    SELECT id, '_moved.{id}', 'tombstone', 60 FROM zones WHERE apex = 'example.org.';
"#;

impl Database {
    /// Loads the demo data into a database without zones.
    pub async fn seed_demo(&self) -> Result<(), StoreError> {
        let zones = self.zone_apexes().await?;
        if !zones.is_empty() {
            return Err(StoreError::Conflict(format!(
                "the database already holds zones ({}): the demo data loads only into an empty database",
                zones.join(", ")
            )));
        }
        let statements: Vec<Statement> = DEMO_SQL
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_owned(), Vec::new()))
            .collect();
        // The demo's serials are as written (1).
        self.transaction_keeping_serials(statements).await
    }
}
