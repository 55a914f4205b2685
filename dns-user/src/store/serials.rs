//! SOA serials follow the data (RFC 1982 arithmetic, a counter): every write
//! transaction of ours ends by bumping, once, the serial of each zone its changes
//! affect, and marking those change rows done. The change log (written by the
//! triggers, whoever writes) says what changed, so no write path has to know which
//! zones it touches:
//!
//! - a zone's own rows (SOA fields, name servers, records, rules): that zone;
//! - instances, tombstones, clusters and territories (answers made by rules): every
//!   zone with rules, and the zones of the affected instances' custom domains;
//! - custom domains and ACME challenges: the zone holding the name.
//!
//! Changes written by other programs straight into the tables are bumped by our next
//! write transaction.

use super::sql::Statement;

/// Bumps the serials of the zones the pending change rows affect.
const BUMP: &str = "
UPDATE zones SET soa_serial = (soa_serial + 1) % 4294967296 WHERE id IN (
    SELECT CAST(c.row_key AS BIGINT) FROM changes c
        WHERE c.serial_done = 0 AND c.tbl IN ('zones', 'zone_ns', 'records', 'name_rules')
    UNION
    SELECT r.zone_id FROM name_rules r WHERE EXISTS (
        SELECT 1 FROM changes c WHERE c.serial_done = 0 AND c.tbl IN (
            'instances', 'tombstones', 'clusters', 'cluster_services', 'cluster_addresses', 'cluster_checks',
            'territories', 'territory_prefixes'))
    UNION
    SELECT (SELECT z.id FROM zones z
            WHERE n.name = z.apex
               OR (length(n.name) > length(z.apex) AND substr(n.name, length(n.name) - length(z.apex)) = '.' || z.apex)
            ORDER BY length(z.apex) DESC LIMIT 1)
    FROM (
        SELECT c.detail AS name FROM changes c WHERE c.serial_done = 0 AND c.tbl = 'domains'
        UNION
        SELECT '_acme-challenge.' || c.row_key FROM changes c WHERE c.serial_done = 0 AND c.tbl = 'acme_challenges'
        UNION
        SELECT d.hostname FROM domains d JOIN changes c
            ON c.serial_done = 0 AND c.tbl IN ('instances', 'tombstones') AND d.instance_id = CAST(c.row_key AS BIGINT)
        UNION
        SELECT d.hostname FROM domains d JOIN instances i ON i.id = d.instance_id JOIN changes c
            ON c.serial_done = 0
           AND c.tbl IN ('clusters', 'cluster_services', 'cluster_addresses', 'cluster_checks')
           AND i.cluster_id = CAST(c.row_key AS BIGINT)
    ) n
)";

/// Marks the pending change rows (those of this transaction, and any an outside writer
/// left) as reflected in the serials.
const MARK_DONE: &str = "UPDATE changes SET serial_done = 1 WHERE serial_done = 0";

/// The statements that end a write transaction: the bump, then the mark.
pub fn bump() -> [Statement; 2] {
    [(BUMP.to_owned(), Vec::new()), (MARK_DONE.to_owned(), Vec::new())]
}

/// The statement that ends a write transaction whose zones keep the serials it wrote
/// (the demo data, a zone file with a newer serial).
pub fn keep() -> Statement {
    (MARK_DONE.to_owned(), Vec::new())
}
