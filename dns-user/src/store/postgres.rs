//! PostgreSQL backend: one database shared by a fleet of edge nodes. Changes reach
//! every node through LISTEN/NOTIFY (see [`super::changes`]); TLS as the URL says
//! (see [`super::tls`]).

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt as _;
use tokio_postgres::{
    AsyncMessage, NoTls,
    types::{ToSql, Type},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::breaker::{BACKOFF, Breaker, Verdict};
use super::{
    StoreError,
    schema::postgres_migrations,
    sql::{Row, Statement, Value},
};

/// Connections kept per node.
const POOL_SIZE: usize = 16;
/// How long a statement may wait for a connection before the database counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How much longer than the statement timeout we wait for a statement's answer before
/// the connection counts as dead (a stalled link, a vanished server): the server's own
/// cancel normally answers first.
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// TCP keepalive on idle connections (the LISTEN one): first probe after this, then
/// every KEEPALIVE_INTERVAL, KEEPALIVE_RETRIES unanswered probes close it.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;
/// Data sent and not acknowledged for this long closes the connection (TCP_USER_TIMEOUT).
const UNACKNOWLEDGED_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    url: String,
    /// For connections outside the pool (LISTEN).
    config: std::sync::Arc<tokio_postgres::Config>,
    tls: Option<MakeRustlsConnect>,
    /// How long a statement's answer may take on our side (see [`DEADLINE_MARGIN`]);
    /// set for the serving daemon, which also keeps statements away from a database
    /// that stopped answering (the breaker).
    deadline: Option<Duration>,
    breaker: std::sync::Arc<Breaker>,
}

fn unavailable(e: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(super::with_causes(&e))
}

impl PgStore {
    /// Connects and applies pending migrations; statements of this pool are cancelled
    /// by the server after `statement_timeout`, if given.
    pub async fn open(url: &str, statement_timeout: Option<Duration>) -> Result<Self, StoreError> {
        let store = Self::connect(url, statement_timeout).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects (checking that the server answers) without migrating.
    pub async fn connect(url: &str, statement_timeout: Option<Duration>) -> Result<Self, StoreError> {
        let (plain_url, tls) = super::tls::split_url(url)?;
        let mut config: tokio_postgres::Config = plain_url
            .parse()
            .map_err(|e| StoreError::BadUrl { url: url.to_owned(), reason: format!("{e}") })?;
        config.ssl_mode(tls.ssl_mode());
        let tls = tls.connector(url)?;
        config.connect_timeout(CONNECT_TIMEOUT);
        // A link that dies quietly (a partition) closes its connections instead of
        // leaving them waiting for minutes of retransmissions.
        config
            .keepalives(true)
            .keepalives_idle(KEEPALIVE_IDLE)
            .keepalives_interval(KEEPALIVE_INTERVAL)
            .keepalives_retries(KEEPALIVE_RETRIES)
            .tcp_user_timeout(UNACKNOWLEDGED_TIMEOUT);
        if let Some(timeout) = statement_timeout {
            // Every wait has a deadline: a slow statement fails (the database counts as
            // unavailable for it) instead of holding a connection.
            config.options(format!("-c statement_timeout={}", timeout.as_millis()));
        }
        let recycling = || ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = match &tls {
            Some(tls) => Manager::from_config(config.clone(), tls.clone(), recycling()),
            None => Manager::from_config(config.clone(), NoTls, recycling()),
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::BadUrl { url: url.to_owned(), reason: e.to_string() })?;
        let deadline = statement_timeout.map(|t| t + DEADLINE_MARGIN);
        let config = std::sync::Arc::new(config);
        let store = Self { pool, url: url.to_owned(), config, tls, deadline, breaker: Default::default() };
        store.query("SELECT 1", vec![]).await?;
        Ok(store)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(unavailable)
    }

    /// Runs `work` on a pooled connection within the deadline. A connection whose
    /// answer did not come in time leaves the pool: its link may never deliver again,
    /// and a late answer would arrive on it anyway.
    /// While the serving daemon's breaker is open (the database failed to answer a
    /// moment ago), the statement fails at once as unavailable, but for one probe.
    async fn on_connection<T>(
        &self,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let Some(deadline) = self.deadline else { return work(&mut self.client().await?).await };
        let verdict = self.breaker.verdict();
        if verdict == Verdict::StayAway {
            return Err(StoreError::Unavailable(format!(
                "the database failed to answer less than {BACKOFF:?} ago (it is probed again then)"
            )));
        }
        let result = async {
            let mut client = self.client().await?;
            match tokio::time::timeout(deadline, work(&mut client)).await {
                Ok(result) => result,
                Err(_) => {
                    drop(deadpool_postgres::Client::take(client));
                    Err(StoreError::Unavailable(format!("the database did not answer within {deadline:?}")))
                }
            }
        }
        .await;
        self.breaker.record(verdict, !result.as_ref().is_err_and(StoreError::is_unavailable));
        result
    }

    /// The serving daemon's breaker (see [`Breaker`]), for metrics.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    pub async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        self.on_connection(async |client| {
            let stmt = client.prepare_cached(sql).await?;
            let boxed = to_params(&params);
            let rows = client.query(&stmt, &refs(&boxed)).await?;
            rows.iter().map(from_row).collect()
        })
        .await
    }

    /// Runs the statements in one transaction, only if each guard (a query returning
    /// one integer) returns non-zero first; each statement's rows and the rows it
    /// changed, or `Ok(Err(i))` when guard `i` does not hold (the transaction is
    /// rolled back).
    pub async fn guarded_transaction(
        &self,
        guards: Vec<Statement>,
        statements: Vec<Statement>,
    ) -> Result<Result<Vec<(Vec<Row>, u64)>, usize>, StoreError> {
        self.on_connection(async |client| Self::guarded_on(client, &guards, &statements).await).await
    }

    async fn guarded_on(
        client: &mut deadpool_postgres::Client,
        guards: &[Statement],
        statements: &[Statement],
    ) -> Result<Result<Vec<(Vec<Row>, u64)>, usize>, StoreError> {
        let tx = client.transaction().await?;
        for (index, (sql, params)) in guards.iter().enumerate() {
            let boxed = to_params(params);
            let row = tx.query_opt(sql.as_str(), &refs(&boxed)).await?;
            let holds = match row {
                Some(row) => from_row(&row)?.int(0)? != 0,
                None => false,
            };
            if !holds {
                tx.rollback().await?;
                return Ok(Err(index));
            }
        }
        let mut results = Vec::with_capacity(statements.len());
        for (sql, params) in statements {
            let boxed = to_params(params);
            let stmt = tx.prepare(sql.as_str()).await?;
            results.push(if stmt.columns().is_empty() {
                (Vec::new(), tx.execute(&stmt, &refs(&boxed)).await?)
            } else {
                let rows = tx.query(&stmt, &refs(&boxed)).await?;
                (rows.iter().map(from_row).collect::<Result<Vec<_>, _>>()?, 0)
            });
        }
        tx.commit().await?;
        Ok(Ok(results))
    }

    /// Applies the migrations this database has not seen, one node at a time.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        client.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)").await?;
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('instadns-migrate'))", &[]).await?;
        let current: i64 =
            tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[]).await?.get(0);
        let migrations = postgres_migrations();
        super::schema::check_schema_version(current as u32, &migrations)?;
        let mut applied = 0;
        for (version, sql) in migrations.iter().filter(|(v, _)| i64::from(*v) > current) {
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&i64::from(*version)]).await?;
            tracing::info!(version, "applied schema migration");
            applied += 1;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// Listens on `channel`; each notification's payload is sent to `tx`, or, when `tx`
    /// is full, dropped with `overflowed` set (the caller reads the log then).
    /// `listening` fires once LISTEN is in effect (the caller catches up from then on).
    /// Returns when the connection is lost (the caller reconnects and catches up).
    pub async fn listen(
        &self,
        channel: &str,
        tx: tokio::sync::mpsc::Sender<String>,
        overflowed: &std::sync::atomic::AtomicBool,
        listening: tokio::sync::oneshot::Sender<()>,
    ) -> Result<(), StoreError> {
        // Bounded: when it is full the driver stops reading the connection for a moment.
        let (msg_tx, mut msg_rx) = tokio::sync::mpsc::channel(64);
        let (client, driver) = match &self.tls {
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                (client, tokio::spawn(drive(connection, msg_tx)))
            }
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                (client, tokio::spawn(drive(connection, msg_tx)))
            }
        };
        client.batch_execute(&format!("LISTEN {channel}")).await?;
        let _ = listening.send(());
        let result = loop {
            match msg_rx.recv().await {
                Some(Ok(payload)) => match tx.try_send(payload) {
                    Ok(()) => {}
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                        overflowed.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => break Ok(()),
                },
                Some(Err(e)) => break Err(e.into()),
                None => break Err(StoreError::Unavailable("the notification connection closed".into())),
            }
        };
        driver.abort();
        result
    }
}

/// Reads a LISTEN connection's messages; notifications (or the error that ended it) go
/// to `msg_tx`.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    msg_tx: tokio::sync::mpsc::Sender<Result<String, tokio_postgres::Error>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
    while let Some(message) = messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(n)) => {
                if msg_tx.send(Ok(n.payload().to_owned())).await.is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = msg_tx.send(Err(e)).await;
                break;
            }
        }
    }
}

fn to_params(params: &[Value]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|v| -> Box<dyn ToSql + Sync + Send> {
            match v {
                Value::Int(i) => Box::new(*i),
                Value::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

fn refs(boxed: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    boxed.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect()
}

fn from_row(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut values = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let v = match *column.type_() {
            Type::INT8 => Value::Int(row.try_get::<_, Option<i64>>(i)?),
            Type::INT4 => Value::Int(row.try_get::<_, Option<i32>>(i)?.map(i64::from)),
            Type::INT2 => Value::Int(row.try_get::<_, Option<i16>>(i)?.map(i64::from)),
            Type::BOOL => Value::Int(row.try_get::<_, Option<bool>>(i)?.map(i64::from)),
            _ => Value::Text(row.try_get::<_, Option<String>>(i)?),
        };
        values.push(v);
    }
    Ok(Row(values))
}
