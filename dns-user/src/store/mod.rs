//! The database behind the server: SQLite (embedded default) or PostgreSQL (for fleets),
//! one interface over both. Statements are written once ([`sql`]), rows are mapped once
//! ([`rows`]), and each noun's management operations live in their own file. Nothing
//! above this module writes SQL.
//!
//! May import: `model`, `protocol` (names), `dns_common`. Never the resolver, the
//! engine, the fast path or anything above them.

pub mod acme;
pub mod audit;
pub mod breaker;
pub mod byo;
mod catalog;
pub mod changes;
pub mod clusters;
mod demo;
pub mod domains;
pub mod instances;
pub mod keys;
pub mod latency;
pub mod nodes;
pub mod postgres;
pub mod records;
pub mod rows;
pub mod rules;
mod schema;
mod serials;
pub mod sql;
pub mod sqlite;
pub mod territories;
pub mod tls;
pub mod tokens;
pub mod update;
pub mod zonefile;
pub mod zones;

use std::{future::Future, path::PathBuf};

use thiserror::Error;

pub use byo::ByoInstances;
pub use clusters::{ClusterInfo, ClusterUpdate};
pub use instances::InstanceInfo;
pub use postgres::PgStore;
pub use rows::{
    AcmeChallenge, AddressRow, CatalogRows, CheckRow, ClusterRow, DomainRow, FromRow, Instance, NsRow,
    RecordRow, RuleRow, ServiceRow, TerritoryPrefixRow, Tombstone, ZoneRow,
};
pub use schema::CHANGE_CHANNEL;
use sql::{Row, Statement, Value};
pub use sqlite::SqliteStore;
pub use zones::{NewZone, ZoneInfo, ZoneUpdate};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// No room left where the data is written: nothing of the write was committed.
    #[error("{0}")]
    Full(String),
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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => Self::Full(
                "the filesystem holding the SQLite database is full: free space on it and retry \
                 (nothing of this write was committed)"
                    .into(),
            ),
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(
                    f.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) =>
            {
                Self::Unavailable(format!(
                    "the SQLite database stayed locked by another writer for {} s (a long transaction \
                     elsewhere?): retry when it is done (nothing of this write was committed)",
                    sqlite::BUSY_TIMEOUT.as_secs()
                ))
            }
            _ => Self::Sqlite(e),
        }
    }
}

impl From<crate::model::Invalid> for StoreError {
    fn from(e: crate::model::Invalid) -> Self {
        Self::Invalid(e.0)
    }
}

impl From<crate::protocol::name::NameError> for StoreError {
    fn from(e: crate::protocol::name::NameError) -> Self {
        Self::Invalid(e.0)
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            // 53100 disk_full (the server's disk; the transaction was rolled back).
            Some(db) if db.code().code() == "53100" => Self::Full(format!(
                "the PostgreSQL server's disk is full ({}): free space on it and retry \
                 (nothing of this write was committed)",
                db.message()
            )),
            Some(db) => {
                Self::Postgres { message: db.message().to_owned(), sqlstate: db.code().code().to_owned() }
            }
            // No answer from the server: the connection failed or was cut.
            None => Self::Unavailable(with_causes(&e)),
        }
    }
}

/// An error and each of its causes ("error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer"): the cause is what the operator can act on.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
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

impl std::str::FromStr for DbLocation {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, StoreError> {
        Self::parse(url)
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Postgres(url) => f.write_str(url),
        }
    }
}

impl<'de> serde::Deserialize<'de> for DbLocation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
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
    /// A page of instances by id after `after`: for the names that exist, and what a
    /// zone walk reads ahead.
    fn instances_after(
        &self,
        after: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Instance>, StoreError>> + Send;
    /// Every name with an ACME challenge (without the `_acme-challenge` label).
    fn acme_names(&self) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Whether every instance is in this store (not looked up elsewhere, as with
    /// `--instance-sql`): then the names rules make can be enumerated.
    fn instances_enumerable(&self) -> bool;
    /// Applies an RFC 2136 update to the zone's records and challenges, atomically
    /// (the one write the serving path makes).
    fn apply_update(
        &self,
        update: &update::ZoneUpdate,
    ) -> impl Future<Output = Result<update::UpdateOutcome, StoreError>> + Send;
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
    /// When `backend` is a read-only hot standby: the primary, which takes the writes.
    primary: Option<std::sync::Arc<Database>>,
}

/// How long a node waits for its hot standby to replay the primary's migrations.
const REPLICA_SCHEMA_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a statement of the serving daemon may run (PostgreSQL `statement_timeout`):
/// lookups answer queries, and a query's wait has a deadline.
pub const SERVING_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl Database {
    /// Opens the database for the serving daemon: as [`Database::open`], with PostgreSQL
    /// statements cancelled after `statement_timeout`.
    pub async fn open_serving(
        location: &DbLocation,
        statement_timeout: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let backend = match location {
            DbLocation::Postgres(url) => {
                // Migrations may take longer than a lookup: they run without the limit.
                PgStore::open(url, None).await?;
                Backend::Postgres(PgStore::connect(url, Some(statement_timeout)).await?)
            }
            _ => return Self::open(location).await,
        };
        Ok(Self { backend, byo: None, primary: None })
    }

    /// Opens a PostgreSQL hot standby for reads and its primary for writes (the daemon
    /// with `--db-primary`): migrations run on the primary, and the standby is waited
    /// for until it has replayed them.
    pub async fn open_serving_replica(
        replica: &DbLocation,
        primary: &DbLocation,
        statement_timeout: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let DbLocation::Postgres(replica_url) = replica else {
            return Err(StoreError::Invalid(
                "a primary (--db-primary) is for PostgreSQL: --db must be the postgres:// URL of its hot standby"
                    .into(),
            ));
        };
        if !matches!(primary, DbLocation::Postgres(_)) {
            return Err(StoreError::Invalid("--db-primary must be a postgres:// URL".into()));
        }
        let primary = Self::open_serving(primary, statement_timeout).await?;
        let store = PgStore::connect(replica_url, Some(statement_timeout)).await?;
        let newest = schema::postgres_migrations().last().map_or(0, |(v, _)| i64::from(*v));
        let deadline = std::time::Instant::now() + REPLICA_SCHEMA_WAIT;
        loop {
            let rows = store.query("SELECT COALESCE(MAX(version), 0) FROM schema_version", vec![]).await?;
            let version = rows.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
            if version >= newest {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(StoreError::Unavailable(format!(
                    "the replica has schema version {version}, not {newest}, {REPLICA_SCHEMA_WAIT:?} after the primary was migrated: is it replicating?"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(Self { backend: Backend::Postgres(store), byo: None, primary: Some(std::sync::Arc::new(primary)) })
    }

    /// Whether reads go to a hot standby (writes to its primary).
    pub fn is_replica(&self) -> bool {
        self.primary.is_some()
    }

    /// How far the hot standby's replay is behind, in milliseconds (0 when it has
    /// replayed all it received).
    pub async fn replica_lag_ms(&self) -> Result<i64, StoreError> {
        self.count(
            "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
                    ELSE COALESCE((EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint, 0) END",
            vec![],
        )
        .await
    }

    /// Opens the database, applying migrations. A SQLite file that does not exist yet is
    /// created empty (`instadns db demo` loads the demo data).
    pub async fn open(location: &DbLocation) -> Result<Self, StoreError> {
        let backend = match location {
            DbLocation::Sqlite(path) => Backend::Sqlite(SqliteStore::open(path.clone()).await?),
            DbLocation::Postgres(url) => Backend::Postgres(PgStore::open(url, None).await?),
        };
        Ok(Self { backend, byo: None, primary: None })
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

    /// Runs one write statement (in its own transaction, serials bumped); returns the
    /// rows it changed.
    pub async fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, StoreError> {
        let results = self.write(vec![(sql.to_owned(), params)], serials::bump()).await?;
        Ok(results.first().map_or(0, |(_, n)| *n))
    }

    /// Runs the statements in one transaction, the zones they change getting new SOA
    /// serials in it (`store::serials`); returns each statement's rows.
    pub async fn transaction(&self, statements: Vec<Statement>) -> Result<Vec<Vec<Row>>, StoreError> {
        let results = self.write(statements, serials::bump()).await?;
        Ok(results.into_iter().map(|(rows, _)| rows).collect())
    }

    /// The same; returns the number of rows each statement changed.
    pub async fn write_counted(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        let results = self.write(statements, serials::bump()).await?;
        Ok(results.into_iter().map(|(_, n)| n).collect())
    }

    /// The same, the zones keeping the serials the statements write.
    pub async fn transaction_keeping_serials(&self, statements: Vec<Statement>) -> Result<(), StoreError> {
        self.write(statements, [serials::keep()]).await.map(|_| ())
    }

    /// Runs `statements` then `end` in one transaction (on the primary when this is a
    /// hot standby); the results of `statements`.
    async fn write(
        &self,
        mut statements: Vec<Statement>,
        end: impl IntoIterator<Item = Statement>,
    ) -> Result<Vec<(Vec<Row>, u64)>, StoreError> {
        let n = statements.len();
        statements.extend(end);
        let target = self.primary.as_deref().unwrap_or(self);
        let unguarded = match &target.backend {
            Backend::Sqlite(s) => s.guarded_transaction(Vec::new(), statements).await?,
            Backend::Postgres(p) => p.guarded_transaction(Vec::new(), statements).await?,
        };
        let mut results =
            unguarded.map_err(|_| StoreError::Worker("a write without guards failed a guard".into()))?;
        results.truncate(n);
        Ok(results)
    }

    /// Runs `statements` (serials bumped) only if every guard, a query returning one
    /// integer, returns non-zero in the same transaction first; `Ok(Err(i))` when guard
    /// `i` does not hold, and nothing was written. On PostgreSQL the guarded writes of
    /// one `lock` key (a zone) take turns, so a guard cannot go stale before the writes.
    pub async fn guarded_write(
        &self,
        lock: i64,
        guards: Vec<Statement>,
        mut statements: Vec<Statement>,
    ) -> Result<Result<Vec<u64>, usize>, StoreError> {
        let n = statements.len();
        statements.extend(serials::bump());
        let target = self.primary.as_deref().unwrap_or(self);
        let results = match &target.backend {
            // One writer at a time already (BEGIN IMMEDIATE).
            Backend::Sqlite(s) => s.guarded_transaction(guards, statements).await?,
            Backend::Postgres(p) => {
                let mut all = Vec::with_capacity(guards.len() + 1);
                all.push((
                    "SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock(hashtext('instadns-update'), CAST(CAST($1 AS BIGINT) AS INTEGER))) l"
                        .to_owned(),
                    vec![Value::from(lock)],
                ));
                all.extend(guards);
                p.guarded_transaction(all, statements).await?.map_err(|i| i.saturating_sub(1))
            }
        };
        Ok(results.map(|mut r| {
            r.truncate(n);
            r.into_iter().map(|(_, count)| count).collect()
        }))
    }

    /// `SELECT <T's columns> <rest>`, each row mapped to a `T`.
    pub async fn select<T: FromRow>(&self, rest: &str, params: Vec<Value>) -> Result<Vec<T>, StoreError> {
        let rows = self.query(&format!("SELECT {} {rest}", T::COLUMNS), params).await?;
        rows.iter().map(T::from_row).collect()
    }

    /// The first row of [`Database::select`], if any.
    pub async fn select_one<T: FromRow>(
        &self,
        rest: &str,
        params: Vec<Value>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.select(rest, params).await?.into_iter().next())
    }

    /// The single integer a `SELECT COUNT(*) ...` (or similar) returns.
    pub async fn count(&self, sql: &str, params: Vec<Value>) -> Result<i64, StoreError> {
        self.query_opt(sql, params).await?.map_or(Ok(0), |r| r.int(0))
    }

    /// Whether a `SELECT 1 ...` finds a row.
    pub async fn exists(&self, sql: &str, params: Vec<Value>) -> Result<bool, StoreError> {
        Ok(self.query_opt(sql, params).await?.is_some())
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
