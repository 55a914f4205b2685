//! SQLite backend: the embedded default. WAL mode lets the CLI (or any other process)
//! write while the daemon reads; queries run on tokio's blocking pool over a small pool
//! of connections.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::{
    AddressRow, CatalogRows, ClusterRow, Instance, NsRow, RecordRow, RuleRow, ServiceRow, Store, StoreError,
    ZoneRow, demo::DEMO_SQL, schema::SQLITE_MIGRATIONS,
};

/// Most idle connections kept for reuse.
const MAX_IDLE_CONNECTIONS: usize = 8;

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (creating with the demo data if the file does not exist) and migrates.
    pub async fn open(path: PathBuf) -> Result<Self, StoreError> {
        tokio::task::spawn_blocking(move || Self::open_blocking(path))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    pub fn open_blocking(path: PathBuf) -> Result<Self, StoreError> {
        let fresh = !path.exists();
        if fresh && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Invalid(format!("creating the database directory {}: {e}", dir.display()))
            })?;
        }
        let mut conn = connect(&path)?;
        migrate(&mut conn)?;
        if fresh {
            conn.execute_batch(&format!("BEGIN; {DEMO_SQL} COMMIT;"))?;
            tracing::info!(path = %path.display(), "created a new database with the demo data");
        }
        Ok(Self { inner: Arc::new(Inner { path, idle: Mutex::new(vec![conn]) }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.run(f))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

impl Inner {
    fn run<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().map_err(|_| StoreError::Worker("pool poisoned".into()))?.pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
        result
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
    Ok(conn)
}

/// Applies the migrations this database has not seen; returns how many ran.
pub fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: u32 =
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?;
    let newest = SQLITE_MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(StoreError::Invalid(format!(
            "the database schema is version {current}, newer than this binary knows ({newest}): upgrade instadns"
        )));
    }
    let mut applied = 0;
    for (version, sql) in SQLITE_MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [version])?;
        tx.commit()?;
        tracing::info!(version, "applied schema migration");
        applied += 1;
    }
    Ok(applied)
}

fn read_instance(row: &rusqlite::Row<'_>) -> rusqlite::Result<Instance> {
    Ok(Instance {
        id: row.get(0)?,
        name: row.get(1)?,
        owner: row.get(2)?,
        cluster_id: row.get(3)?,
        ttl: row.get(4)?,
    })
}

const INSTANCE_COLUMNS: &str = "id, name, owner, cluster_id, ttl";

impl Store for SqliteStore {
    async fn catalog_rows(&self) -> Result<CatalogRows, StoreError> {
        self.with_conn(|conn| {
            let mut rows = CatalogRows::default();
            let mut stmt = conn.prepare(
                "SELECT id, apex, soa_mname, soa_rname, soa_serial, soa_refresh, soa_retry, soa_expire, \
                 soa_minimum, soa_ttl, ns_ttl FROM zones",
            )?;
            rows.zones = stmt
                .query_map([], |r| {
                    Ok(ZoneRow {
                        id: r.get(0)?,
                        apex: r.get(1)?,
                        soa_mname: r.get(2)?,
                        soa_rname: r.get(3)?,
                        soa_serial: r.get(4)?,
                        soa_refresh: r.get(5)?,
                        soa_retry: r.get(6)?,
                        soa_expire: r.get(7)?,
                        soa_minimum: r.get(8)?,
                        soa_ttl: r.get(9)?,
                        ns_ttl: r.get(10)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            rows.ns = conn
                .prepare("SELECT zone_id, nsdname FROM zone_ns ORDER BY zone_id, nsdname")?
                .query_map([], |r| Ok(NsRow { zone_id: r.get(0)?, nsdname: r.get(1)? }))?
                .collect::<Result<_, _>>()?;
            rows.records = conn
                .prepare("SELECT id, zone_id, name, rtype, ttl, rdata FROM records ORDER BY id")?
                .query_map([], |r| {
                    Ok(RecordRow {
                        id: r.get(0)?,
                        zone_id: r.get(1)?,
                        name: r.get(2)?,
                        rtype: r.get(3)?,
                        ttl: r.get(4)?,
                        rdata: r.get(5)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            rows.rules = conn
                .prepare("SELECT id, zone_id, pattern, kind, ttl FROM name_rules ORDER BY id")?
                .query_map([], |r| {
                    Ok(RuleRow {
                        id: r.get(0)?,
                        zone_id: r.get(1)?,
                        pattern: r.get(2)?,
                        kind: r.get(3)?,
                        ttl: r.get(4)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            rows.clusters = conn
                .prepare("SELECT id, name, address_order FROM clusters ORDER BY id")?
                .query_map([], |r| {
                    Ok(ClusterRow { id: r.get(0)?, name: r.get(1)?, address_order: r.get(2)? })
                })?
                .collect::<Result<_, _>>()?;
            rows.services = conn
                .prepare(
                    "SELECT cluster_id, service, target FROM cluster_services ORDER BY cluster_id, service",
                )?
                .query_map([], |r| {
                    Ok(ServiceRow { cluster_id: r.get(0)?, service: r.get(1)?, target: r.get(2)? })
                })?
                .collect::<Result<_, _>>()?;
            rows.addresses = conn
                .prepare("SELECT cluster_id, address FROM cluster_addresses ORDER BY cluster_id, address")?
                .query_map([], |r| Ok(AddressRow { cluster_id: r.get(0)?, address: r.get(1)? }))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn instance_by_id(&self, id: i64) -> Result<Option<Instance>, StoreError> {
        self.with_conn(move |conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = ?1"))?
                .query_row(params![id], read_instance)
                .optional()?)
        })
        .await
    }

    async fn instance_by_owner_name(&self, owner: &str, name: &str) -> Result<Option<Instance>, StoreError> {
        let (owner, name) = (owner.to_owned(), name.to_owned());
        self.with_conn(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {INSTANCE_COLUMNS} FROM instances WHERE owner = ?1 AND name = ?2"
                ))?
                .query_row(params![owner, name], read_instance)
                .optional()?)
        })
        .await
    }

    async fn owner_exists(&self, owner: &str) -> Result<bool, StoreError> {
        let owner = owner.to_owned();
        self.with_conn(move |conn| {
            Ok(conn
                .prepare_cached("SELECT 1 FROM instances WHERE owner = ?1 AND name IS NOT NULL LIMIT 1")?
                .query_row(params![owner], |_| Ok(()))
                .optional()?
                .is_some())
        })
        .await
    }
}
