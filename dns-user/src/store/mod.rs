//! The database behind the server: SQLite (embedded default) or PostgreSQL (for fleets),
//! one interface over both. Statements are written once ([`sql`]); nothing above this
//! module writes SQL.

pub mod admin;
pub mod byo;
pub mod changes;
mod demo;
pub mod latency;
pub mod postgres;
mod schema;
pub mod sql;
pub mod sqlite;

use std::{future::Future, path::PathBuf};

use thiserror::Error;

pub use byo::ByoInstances;
pub use postgres::PgStore;
pub use schema::CHANGE_CHANNEL;
use sql::{Row, Statement, Value};
pub use sqlite::SqliteStore;

use crate::params;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A statement the PostgreSQL server rejected.
    #[error("database error: {message}")]
    Postgres { message: String, sqlstate: String },
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database worker failed: {0}")]
    Worker(String),
    #[error("invalid database URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => {
                Self::Postgres { message: db.message().to_owned(), sqlstate: db.code().code().to_owned() }
            }
            // No answer from the server: the connection failed or was cut.
            None => Self::Unavailable(e.to_string()),
        }
    }
}

impl StoreError {
    /// Whether the database could not be reached (as opposed to a bad request).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Worker(_))
    }

    /// Whether a UNIQUE constraint refused the write.
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Postgres { sqlstate, .. } => sqlstate == "23505",
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            _ => false,
        }
    }
}

/// Where the data lives, parsed from `--db`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbLocation {
    /// `sqlite:PATH`, a plain path (SQLite), or `postgres://...` / `postgresql://...`.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |reason: &str| StoreError::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        if path.is_empty() {
            return Err(bad("empty path"));
        }
        if path.contains("://") {
            return Err(bad("unknown scheme: use sqlite:PATH or postgres://..."));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

/// A zone's apex data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneRow {
    pub id: i64,
    pub apex: String,
    pub soa_mname: String,
    pub soa_rname: String,
    pub soa_serial: u32,
    pub soa_refresh: u32,
    pub soa_retry: u32,
    pub soa_expire: u32,
    pub soa_minimum: u32,
    pub soa_ttl: u32,
    pub ns_ttl: u32,
    pub default_ttl: u32,
}

#[derive(Clone, Debug)]
pub struct NsRow {
    pub zone_id: i64,
    pub nsdname: String,
}

/// A static record in presentation format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRow {
    pub id: i64,
    pub zone_id: i64,
    pub name: String,
    pub rtype: String,
    pub ttl: u32,
    pub rdata: String,
}

/// A name pattern of a zone that maps query names to instances.
#[derive(Clone, Debug)]
pub struct RuleRow {
    pub id: i64,
    pub zone_id: i64,
    pub pattern: String,
    pub kind: String,
    pub ttl: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRow {
    pub id: i64,
    pub name: String,
    /// `fixed` or `rotate`.
    pub address_order: String,
    /// `all` addresses, or `one` picked by weight.
    pub pick: String,
    /// What a failover queue answers when every address is down: `all` or `last`.
    pub fallback: String,
}

/// The columns [`cluster_row`] reads.
pub const CLUSTER_COLUMNS: &str = "id, name, address_order, pick, fallback";

pub fn cluster_row(r: &sql::Row) -> Result<ClusterRow, StoreError> {
    Ok(ClusterRow {
        id: r.int(0)?,
        name: r.text(1)?,
        address_order: r.text(2)?,
        pick: r.text(3)?,
        fallback: r.text(4)?,
    })
}

/// A cluster's health check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckRow {
    pub cluster_id: i64,
    /// `tcp` or `http`.
    pub kind: String,
    pub port: u16,
    pub path: String,
    pub host: Option<String>,
    pub expect_status: u16,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub rise: u32,
    pub fall: u32,
}

/// The columns [`check_row`] reads.
pub const CHECK_COLUMNS: &str =
    "cluster_id, kind, port, path, host, expect_status, interval_ms, timeout_ms, rise, fall";

pub fn check_row(r: &sql::Row) -> Result<CheckRow, StoreError> {
    let small = |i: usize| -> Result<u16, StoreError> {
        u16::try_from(r.int(i)?).map_err(|_| StoreError::Invalid(format!("column {i} out of range")))
    };
    Ok(CheckRow {
        cluster_id: r.int(0)?,
        kind: r.text(1)?,
        port: small(2)?,
        path: r.text(3)?,
        host: r.opt_text(4)?,
        expect_status: small(5)?,
        interval_ms: r.u32(6)?,
        timeout_ms: r.u32(7)?,
        rise: r.u32(8)?,
        fall: r.u32(9)?,
    })
}

/// A territory's prefix (directional answers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerritoryPrefixRow {
    pub territory: String,
    pub prefix: String,
}

#[derive(Clone, Debug)]
pub struct ServiceRow {
    pub cluster_id: i64,
    pub service: String,
    pub target: String,
}

#[derive(Clone, Debug)]
pub struct AddressRow {
    pub cluster_id: i64,
    pub address: String,
    pub weight: u32,
    pub queue: u32,
    pub territory: Option<String>,
}

/// The small tables, loaded whole into the resolver's catalog.
#[derive(Clone, Debug, Default)]
pub struct CatalogRows {
    pub zones: Vec<ZoneRow>,
    pub ns: Vec<NsRow>,
    pub records: Vec<RecordRow>,
    pub rules: Vec<RuleRow>,
    pub clusters: Vec<ClusterRow>,
    pub services: Vec<ServiceRow>,
    pub addresses: Vec<AddressRow>,
    pub checks: Vec<CheckRow>,
    /// Every territory, with or without prefixes (name, prefixes in order).
    pub territories: Vec<String>,
    pub territory_prefixes: Vec<TerritoryPrefixRow>,
}

/// A tenant instance: where it runs decides its answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub id: i64,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub cluster_id: i64,
    pub ttl: Option<u32>,
}

/// A DNS-01 challenge answer at `_acme-challenge.<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeChallenge {
    pub name: String,
    /// `txt` or `cname`.
    pub kind: String,
    pub value: String,
    pub ttl: u32,
    /// Unix time after which the value is no longer served.
    pub expires_at: Option<i64>,
}

/// The record of a move between clusters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    pub instance_id: i64,
    pub from_cluster: String,
    pub to_cluster: String,
    pub moved_at: i64,
}

/// What the resolver reads. Large tables (instances, domains, challenges) are queried
/// per lookup; small ones are loaded whole.
pub trait Store: Send + Sync + 'static {
    fn catalog_rows(&self) -> impl Future<Output = Result<CatalogRows, StoreError>> + Send;
    fn instance_by_id(&self, id: i64) -> impl Future<Output = Result<Option<Instance>, StoreError>> + Send;
    fn instance_by_owner_name(
        &self,
        owner: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Instance>, StoreError>> + Send;
    fn owner_exists(&self, owner: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// The instance a custom domain belongs to.
    fn domain_instance(&self, hostname: &str)
    -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
    /// Every custom domain's hostname (absolute, lower-case).
    fn domain_names(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Challenges for a name (expired ones included; the resolver filters).
    fn acme(&self, name: &str) -> impl Future<Output = Result<Vec<AcmeChallenge>, StoreError>> + Send;
    fn last_tombstone(
        &self,
        instance_id: i64,
    ) -> impl Future<Output = Result<Option<Tombstone>, StoreError>> + Send;
}

#[derive(Clone)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// The configured database.
#[derive(Clone)]
pub struct Database {
    backend: Backend,
    /// Instances looked up in the platform's own database instead of ours.
    byo: Option<ByoInstances>,
}

impl Database {
    /// Opens the database, applying migrations. A SQLite file that does not exist yet is
    /// created with the demo data; so is a PostgreSQL database without our tables.
    pub async fn open(location: &DbLocation) -> Result<Self, StoreError> {
        let backend = match location {
            DbLocation::Sqlite(path) => Backend::Sqlite(SqliteStore::open(path.clone()).await?),
            DbLocation::Postgres(url) => Backend::Postgres(PgStore::open(url).await?),
        };
        Ok(Self { backend, byo: None })
    }

    /// Connects without migrating or seeding (for commands that must not change the
    /// database on their own).
    pub async fn connect(location: &DbLocation) -> Result<Self, StoreError> {
        let backend = match location {
            DbLocation::Sqlite(path) => Backend::Sqlite(SqliteStore::connect(path.clone()).await?),
            DbLocation::Postgres(url) => Backend::Postgres(PgStore::connect(url).await?),
        };
        Ok(Self { backend, byo: None })
    }

    /// Looks instances up with the platform's own SQL instead of our table.
    pub fn with_byo(mut self, byo: ByoInstances) -> Self {
        self.byo = Some(byo);
        self
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub fn sqlite(&self) -> Option<&SqliteStore> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s),
            Backend::Postgres(_) => None,
        }
    }

    pub fn postgres(&self) -> Option<&PgStore> {
        match &self.backend {
            Backend::Postgres(p) => Some(p),
            Backend::Sqlite(_) => None,
        }
    }

    pub async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        let started = std::time::Instant::now();
        let result = match &self.backend {
            Backend::Sqlite(s) => s.query(sql, params).await,
            Backend::Postgres(p) => p.query(sql, params).await,
        };
        latency::DB_LATENCY.observe(started.elapsed());
        result
    }

    pub async fn query_opt(&self, sql: &str, params: Vec<Value>) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    pub async fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.execute(sql, params).await,
            Backend::Postgres(p) => p.execute(sql, params).await,
        }
    }

    /// Runs the statements in one transaction; returns each statement's rows.
    pub async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<Vec<Row>>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.transaction(statements).await,
            Backend::Postgres(p) => p.transaction(statements).await,
        }
    }
}

const INSTANCE_COLUMNS: &str = "id, name, owner, cluster_id, ttl";

fn instance(row: &Row) -> Result<Instance, StoreError> {
    Ok(Instance {
        id: row.int(0)?,
        name: row.opt_text(1)?,
        owner: row.opt_text(2)?,
        cluster_id: row.int(3)?,
        ttl: row.opt_u32(4)?,
    })
}

impl Store for Database {
    async fn catalog_rows(&self) -> Result<CatalogRows, StoreError> {
        let zones =
            self.query(&format!("SELECT {} FROM zones ORDER BY id", admin::ZONE_COLUMNS), vec![]).await?;
        let ns = self.query("SELECT zone_id, nsdname FROM zone_ns ORDER BY zone_id, nsdname", vec![]).await?;
        let records = self
            .query("SELECT id, zone_id, name, rtype, ttl, rdata FROM records ORDER BY id", vec![])
            .await?;
        let rules =
            self.query("SELECT id, zone_id, pattern, kind, ttl FROM name_rules ORDER BY id", vec![]).await?;
        let clusters =
            self.query(&format!("SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY id"), vec![]).await?;
        let services = self
            .query(
                "SELECT cluster_id, service, target FROM cluster_services ORDER BY cluster_id, service",
                vec![],
            )
            .await?;
        let addresses = self
            .query(
                "SELECT cluster_id, address, weight, queue, territory FROM cluster_addresses \
                 ORDER BY cluster_id, queue, address",
                vec![],
            )
            .await?;
        let checks = self
            .query(&format!("SELECT {CHECK_COLUMNS} FROM cluster_checks ORDER BY cluster_id"), vec![])
            .await?;
        let (territories, territory_prefixes) = self.territory_rows().await?;
        Ok(CatalogRows {
            zones: zones.iter().map(admin::zone_row).collect::<Result<_, StoreError>>()?,
            ns: ns
                .iter()
                .map(|r| Ok(NsRow { zone_id: r.int(0)?, nsdname: r.text(1)? }))
                .collect::<Result<_, StoreError>>()?,
            records: records
                .iter()
                .map(|r| {
                    Ok(RecordRow {
                        id: r.int(0)?,
                        zone_id: r.int(1)?,
                        name: r.text(2)?,
                        rtype: r.text(3)?,
                        ttl: r.u32(4)?,
                        rdata: r.text(5)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            rules: rules
                .iter()
                .map(|r| {
                    Ok(RuleRow {
                        id: r.int(0)?,
                        zone_id: r.int(1)?,
                        pattern: r.text(2)?,
                        kind: r.text(3)?,
                        ttl: r.u32(4)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            clusters: clusters.iter().map(cluster_row).collect::<Result<_, StoreError>>()?,
            services: services
                .iter()
                .map(|r| Ok(ServiceRow { cluster_id: r.int(0)?, service: r.text(1)?, target: r.text(2)? }))
                .collect::<Result<_, StoreError>>()?,
            addresses: addresses
                .iter()
                .map(|r| {
                    Ok(AddressRow {
                        cluster_id: r.int(0)?,
                        address: r.text(1)?,
                        weight: r.u32(2)?,
                        queue: r.u32(3)?,
                        territory: r.opt_text(4)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            checks: checks.iter().map(check_row).collect::<Result<_, StoreError>>()?,
            territories,
            territory_prefixes,
        })
    }

    async fn instance_by_id(&self, id: i64) -> Result<Option<Instance>, StoreError> {
        if let Some(byo) = &self.byo {
            return byo.instance_by_id(id, self).await;
        }
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = $1");
        self.query_opt(&sql, params![id]).await?.as_ref().map(instance).transpose()
    }

    async fn instance_by_owner_name(&self, owner: &str, name: &str) -> Result<Option<Instance>, StoreError> {
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE owner = $1 AND name = $2");
        self.query_opt(&sql, params![owner, name]).await?.as_ref().map(instance).transpose()
    }

    async fn owner_exists(&self, owner: &str) -> Result<bool, StoreError> {
        Ok(self
            .query_opt(
                "SELECT 1 FROM instances WHERE owner = $1 AND name IS NOT NULL LIMIT 1",
                params![owner],
            )
            .await?
            .is_some())
    }

    async fn domain_instance(&self, hostname: &str) -> Result<Option<i64>, StoreError> {
        self.query_opt("SELECT instance_id FROM domains WHERE hostname = $1", params![hostname])
            .await?
            .map(|r| r.int(0))
            .transpose()
    }

    async fn domain_names(&self) -> Result<Vec<String>, StoreError> {
        self.query("SELECT hostname FROM domains", vec![]).await?.iter().map(|r| r.text(0)).collect()
    }

    async fn acme(&self, name: &str) -> Result<Vec<AcmeChallenge>, StoreError> {
        self.query(
            "SELECT name, kind, value, ttl, expires_at FROM acme_challenges WHERE name = $1 ORDER BY kind, value",
            params![name],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(AcmeChallenge {
                name: r.text(0)?,
                kind: r.text(1)?,
                value: r.text(2)?,
                ttl: r.u32(3)?,
                expires_at: r.opt_int(4)?,
            })
        })
        .collect()
    }

    async fn last_tombstone(&self, instance_id: i64) -> Result<Option<Tombstone>, StoreError> {
        self.query_opt(
            "SELECT instance_id, from_cluster, to_cluster, moved_at FROM tombstones \
             WHERE instance_id = $1 ORDER BY moved_at DESC, id DESC LIMIT 1",
            params![instance_id],
        )
        .await?
        .map(|r| {
            Ok(Tombstone {
                instance_id: r.int(0)?,
                from_cluster: r.text(1)?,
                to_cluster: r.text(2)?,
                moved_at: r.int(3)?,
            })
        })
        .transpose()
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A Unix time as RFC 3339 UTC, e.g. 2026-11-18T11:06:40Z.
pub fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn parses_database_locations() {
        assert_eq!(DbLocation::parse("sqlite:/x/y.db").unwrap(), DbLocation::Sqlite("/x/y.db".into()));
        assert_eq!(DbLocation::parse("sqlite:///x.db").unwrap(), DbLocation::Sqlite("/x.db".into()));
        assert_eq!(DbLocation::parse("rel.db").unwrap(), DbLocation::Sqlite("rel.db".into()));
        assert!(matches!(DbLocation::parse("postgres://u@h/db").unwrap(), DbLocation::Postgres(_)));
        assert!(DbLocation::parse("mysql://h/db").is_err());
        assert!(DbLocation::parse("sqlite:").is_err());
    }
}
