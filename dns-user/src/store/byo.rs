//! Bring your own database: a platform that already knows which cluster runs each
//! instance gives the SQL that maps an instance id (`$1`) to a cluster name (first
//! column; an optional second column is a TTL override), run against its own
//! PostgreSQL, in the manner of PowerDNS's generic SQL backend. Clusters, zones and
//! rules stay in our database.

use super::sql::params;
use super::{Database, Instance, PgStore, StoreError};

/// Lookups sent to the platform's database, for metrics.
pub static LOOKUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Clone)]
pub struct ByoInstances {
    db: PgStore,
    sql: String,
}

impl ByoInstances {
    pub async fn connect(url: &str, sql: &str) -> Result<Self, StoreError> {
        if !sql.contains("$1") {
            return Err(StoreError::Invalid(format!(
                "--instance-sql must take the instance id as $1, as in: SELECT cluster FROM apps WHERE id = $1 (got {sql:?})"
            )));
        }
        Ok(Self {
            db: PgStore::connect(url, Some(super::SERVING_STATEMENT_TIMEOUT)).await?,
            sql: sql.to_owned(),
        })
    }

    pub async fn instance_by_id(&self, id: i64, ours: &Database) -> Result<Option<Instance>, StoreError> {
        LOOKUPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(row) = self.db.query(&self.sql, params![id]).await?.into_iter().next() else {
            return Ok(None);
        };
        let Some(cluster) = row.opt_text(0)? else { return Ok(None) };
        let ttl = if row.0.len() > 1 { row.opt_u32(1)? } else { None };
        let cluster_id = ours
            .query_opt("SELECT id FROM clusters WHERE name = $1", params![cluster.as_str()])
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "cluster {cluster:?} (named by --instance-sql for instance {id})"
                ))
            })?
            .int(0)?;
        Ok(Some(Instance { id, name: None, owner: None, cluster_id, ttl }))
    }
}
