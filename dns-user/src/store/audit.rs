//! The audit log of the HTTP management API: who (which token) did what (method, path,
//! the request body), when, and how it ended (the HTTP status). Every write request gets
//! a row, refused and failed ones included.

use serde::Serialize;

use super::{Database, FromRow, Row, StoreError, sql::params};
use crate::model::time::unix_now;

/// The most of a request body an audit row keeps (bodies are bounded by the API anyway).
pub const MAX_AUDITED_BODY: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AuditRow {
    pub id: i64,
    /// Unix time.
    pub at: i64,
    /// The token's name ("-" when no valid token was presented).
    pub token: String,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The HTTP status of the answer.
    pub status: i64,
    /// The request body (UTF-8, cut at 4 KiB).
    pub request: String,
}

impl FromRow for AuditRow {
    const COLUMNS: &'static str = "id, at, token, method, path, status, request";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.int(0)?,
            at: r.int(1)?,
            token: r.text(2)?,
            method: r.text(3)?,
            path: r.text(4)?,
            status: r.int(5)?,
            request: r.text(6)?,
        })
    }
}

impl Database {
    pub async fn audit(
        &self,
        token: &str,
        method: &str,
        path: &str,
        status: u16,
        request: &[u8],
    ) -> Result<(), StoreError> {
        let request = String::from_utf8_lossy(&request[..request.len().min(MAX_AUDITED_BODY)]).into_owned();
        self.execute(
            "INSERT INTO api_audit (at, token, method, path, status, request) VALUES ($1, $2, $3, $4, $5, $6)",
            params![unix_now(), token, method, path, i64::from(status), request],
        )
        .await?;
        Ok(())
    }

    /// Audit rows by id, at most `limit` after id `after`.
    pub async fn list_audit(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        self.select("FROM api_audit WHERE id > $1 ORDER BY id LIMIT $2", params![after, limit]).await
    }
}
