//! The database behind the server: one interface ([`Store`]) over SQLite (embedded
//! default) and, for fleets, PostgreSQL. Nothing above this module writes SQL.

mod demo;
mod schema;
pub mod sqlite;

use std::{future::Future, path::PathBuf};

use thiserror::Error;

pub use sqlite::SqliteStore;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database worker failed: {0}")]
    Worker(String),
    #[error("invalid database URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// Where the data lives, parsed from `--db`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbLocation {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DbLocation {
    /// `sqlite:PATH`, a plain path (SQLite), or `postgres://...`.
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
#[derive(Clone, Debug)]
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
}

#[derive(Clone, Debug)]
pub struct NsRow {
    pub zone_id: i64,
    pub nsdname: String,
}

/// A static record in presentation format.
#[derive(Clone, Debug)]
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

#[derive(Clone, Debug)]
pub struct ClusterRow {
    pub id: i64,
    pub name: String,
    /// `fixed` or `rotate`.
    pub address_order: String,
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

/// What the resolver needs from a database. Large tables (instances) are queried per
/// lookup; small ones are loaded whole.
pub trait Store: Send + Sync + 'static {
    fn catalog_rows(&self) -> impl Future<Output = Result<CatalogRows, StoreError>> + Send;
    fn instance_by_id(&self, id: i64) -> impl Future<Output = Result<Option<Instance>, StoreError>> + Send;
    fn instance_by_owner_name(
        &self,
        owner: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Instance>, StoreError>> + Send;
    fn owner_exists(&self, owner: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The configured database.
#[derive(Clone)]
pub enum Database {
    Sqlite(SqliteStore),
}

impl Database {
    /// Opens the database, applying migrations; a SQLite file that does not exist yet
    /// is created with the demo data.
    pub async fn open(location: &DbLocation) -> Result<Self, StoreError> {
        match location {
            DbLocation::Sqlite(path) => Ok(Self::Sqlite(SqliteStore::open(path.clone()).await?)),
            DbLocation::Postgres(url) => Err(StoreError::BadUrl {
                url: url.clone(),
                reason: "PostgreSQL support is not built yet; use sqlite:PATH".into(),
            }),
        }
    }
}

impl Store for Database {
    async fn catalog_rows(&self) -> Result<CatalogRows, StoreError> {
        match self {
            Self::Sqlite(s) => s.catalog_rows().await,
        }
    }

    async fn instance_by_id(&self, id: i64) -> Result<Option<Instance>, StoreError> {
        match self {
            Self::Sqlite(s) => s.instance_by_id(id).await,
        }
    }

    async fn instance_by_owner_name(&self, owner: &str, name: &str) -> Result<Option<Instance>, StoreError> {
        match self {
            Self::Sqlite(s) => s.instance_by_owner_name(owner, name).await,
        }
    }

    async fn owner_exists(&self, owner: &str) -> Result<bool, StoreError> {
        match self {
            Self::Sqlite(s) => s.owner_exists(owner).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
