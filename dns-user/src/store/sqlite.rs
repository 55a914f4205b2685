//! SQLite backend: the embedded default. WAL mode lets the CLI (or any other process)
//! write while the daemon reads; statements run on tokio's blocking pool over a small
//! pool of connections.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rusqlite::{Connection, OpenFlags, types::ValueRef};

use super::{
    StoreError,
    schema::sqlite_migrations,
    sql::{Row, Statement, Value, to_sqlite_placeholders},
};

/// How long a writer waits for another writer (the daemon, another CLI) to finish.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Most idle connections kept for reuse.
const MAX_IDLE_CONNECTIONS: usize = 8;
/// Most statements running at once (each on its own connection and blocking thread).
const MAX_CONCURRENT: usize = 16;
/// How long a statement waits for its turn before the database counts as unavailable.
const TURN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Bounds the statements in flight (and so the connections and blocking threads).
    turns: Arc<tokio::sync::Semaphore>,
}

impl SqliteStore {
    /// Opens (creating an empty database if the file does not exist) and migrates.
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
        let mut conn = connect(&path, true)?;
        migrate(&mut conn)?;
        if fresh {
            tracing::info!(path = %path.display(), "created a new, empty database (`instadns db demo` loads the demo data)");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                idle: Mutex::new(vec![conn]),
                turns: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT)),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with a pooled connection on the blocking pool.
    pub async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let turn = tokio::time::timeout(TURN_TIMEOUT, self.inner.turns.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::Unavailable(format!("{MAX_CONCURRENT} statements already running on SQLite"))
            })?
            .map_err(|e| StoreError::Worker(e.to_string()))?;
        let inner = self.inner.clone();
        // The turn ends with the statement, even if the caller stops waiting.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            inner.run(f)
        })
        .await
        .map_err(|e| StoreError::Worker(e.to_string()))?
    }

    pub async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        let sql = to_sqlite_placeholders(sql);
        self.with_conn(move |conn| query(conn, &sql, &params)).await
    }

    /// Runs the statements in one transaction, only if each guard (a query returning
    /// one integer) returns non-zero first; each statement's rows and the rows it
    /// changed, or `Ok(Err(i))` when guard `i` does not hold (nothing is written).
    pub async fn guarded_transaction(
        &self,
        guards: Vec<Statement>,
        statements: Vec<Statement>,
    ) -> Result<Result<Vec<(Vec<Row>, u64)>, usize>, StoreError> {
        self.with_conn(move |conn| {
            // IMMEDIATE: the write lock is taken at BEGIN, where the busy timeout waits for
            // it. A deferred transaction that reads first cannot wait when another process
            // commits in between: SQLite fails it at once with "database is locked". It
            // also makes the guards and the writes one atomic step.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            for (index, (sql, params)) in guards.iter().enumerate() {
                let mut stmt = tx.prepare_cached(&to_sqlite_placeholders(sql))?;
                let holds = rows(&mut stmt, params)?.first().map(|r| r.int(0)).transpose()?.unwrap_or(0) != 0;
                if !holds {
                    return Ok(Err(index));
                }
            }
            let mut results = Vec::with_capacity(statements.len());
            for (sql, params) in &statements {
                let mut stmt = tx.prepare_cached(&to_sqlite_placeholders(sql))?;
                results.push(if stmt.column_count() > 0 {
                    (rows(&mut stmt, params)?, 0)
                } else {
                    (Vec::new(), stmt.execute(rusqlite::params_from_iter(params.iter().map(to_sql)))? as u64)
                });
            }
            tx.commit()?;
            Ok(Ok(results))
        })
        .await
    }
}

impl Inner {
    fn run<T>(&self, f: impl FnOnce(&mut Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().map_err(|_| StoreError::Worker("pool poisoned".into()))?.pop();
        let mut conn = match pooled {
            Some(conn) => conn,
            None => connect(&self.path, false)?,
        };
        let result = f(&mut conn);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_CONNECTIONS
        {
            idle.push(conn);
        }
        result
    }
}

fn to_sql(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Int(Some(i)) => rusqlite::types::Value::Integer(*i),
        Value::Text(Some(t)) => rusqlite::types::Value::Text(t.clone()),
        Value::Int(None) | Value::Text(None) => rusqlite::types::Value::Null,
    }
}

fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
    rows(&mut conn.prepare_cached(sql)?, params)
}

fn rows(stmt: &mut rusqlite::CachedStatement<'_>, params: &[Value]) -> Result<Vec<Row>, StoreError> {
    let columns = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter().map(to_sql)))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for i in 0..columns {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Int(None),
                ValueRef::Integer(n) => Value::Int(Some(n)),
                ValueRef::Real(f) => Value::Int(Some(f as i64)),
                ValueRef::Text(t) | ValueRef::Blob(t) => {
                    Value::Text(Some(String::from_utf8_lossy(t).into_owned()))
                }
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

fn connect(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // synchronous = FULL: a commit (and the change log row it writes) survives a power
    // loss once the CLI said it is done. NORMAL could lose the last commits in WAL mode.
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;")?;
    Ok(conn)
}

/// Applies the migrations this database has not seen; returns how many ran.
pub fn migrate(conn: &mut Connection) -> Result<usize, StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let current: u32 =
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |r| r.get(0))?;
    let migrations = sqlite_migrations();
    super::schema::check_schema_version(current, &migrations)?;
    let mut applied = 0;
    let has_change_log: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'changes')",
        [],
        |r| r.get(0),
    )?;
    if current == 1 && !has_change_log {
        // Foreign keys off while name_rules is rebuilt (a no-op inside a transaction).
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let has_address_order: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('clusters') WHERE name = 'address_order')",
            [],
            |r| r.get(0),
        )?;
        tx.execute_batch(&super::schema::sqlite_upgrade_first_layout(has_address_order))?;
        tx.commit()?;
        conn.execute_batch("PRAGMA foreign_keys = ON")?;
        tracing::info!("upgraded a database of the first layout to schema version 1 (every row kept)");
        applied += 1;
    }
    for (version, sql) in migrations.iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [version])?;
        tx.commit()?;
        tracing::info!(version, "applied schema migration");
        applied += 1;
    }
    Ok(applied)
}

/// SQLite's counter of commits by other connections: cheap to poll for changes.
pub fn data_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}
