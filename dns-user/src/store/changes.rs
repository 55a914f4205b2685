//! Reading the change log the triggers write (see `schema`).

use super::{Database, StoreError, sql::Row};
use crate::params;

/// One logged change of a watched table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub id: i64,
    pub table: String,
    /// The identifying column's value (see `schema::WATCHED`).
    pub key: String,
    /// `I`, `U` or `D`.
    pub op: String,
    /// An instance's "owner name", a domain's hostname.
    pub detail: Option<String>,
}

fn change(r: &Row) -> Result<Change, StoreError> {
    Ok(Change { id: r.int(0)?, table: r.text(1)?, key: r.text(2)?, op: r.text(3)?, detail: r.opt_text(4)? })
}

const COLUMNS: &str = "id, tbl, row_key, op, detail";

impl Database {
    /// The newest change's id (0 when none).
    pub async fn change_cursor(&self) -> Result<i64, StoreError> {
        self.query_opt("SELECT COALESCE(MAX(id), 0) FROM changes", vec![]).await?.map_or(Ok(0), |r| r.int(0))
    }

    /// Changes after `after`, oldest first, at most `limit`.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM changes WHERE id > $1 ORDER BY id LIMIT $2");
        self.query(&sql, params![after, limit]).await?.iter().map(change).collect()
    }

    /// The changes with the given ids (from PostgreSQL notifications).
    pub async fn changes_by_id(&self, ids: &[i64]) -> Result<Vec<Change>, StoreError> {
        let (Some(&min), Some(&max)) = (ids.iter().min(), ids.iter().max()) else { return Ok(Vec::new()) };
        let sql = format!("SELECT {COLUMNS} FROM changes WHERE id >= $1 AND id <= $2 ORDER BY id");
        let rows = self.query(&sql, params![min, max]).await?;
        Ok(rows
            .iter()
            .map(change)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|c| ids.contains(&c.id))
            .collect())
    }

    /// Deletes changes logged before `before` (Unix time).
    pub async fn prune_changes(&self, before: i64) -> Result<u64, StoreError> {
        self.execute("DELETE FROM changes WHERE at < $1", params![before]).await
    }
}
