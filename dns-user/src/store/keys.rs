//! TSIG keys: name, algorithm, secret and scope.

use serde::{Deserialize, Serialize};

use super::{Database, FromRow, Row, StoreError, sql::params};
use crate::model::key::{KeyScope, Secret, TsigAlgorithm, key_name};

/// A stored key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyRow {
    /// Lower-case, absolute.
    pub name: String,
    pub algorithm: TsigAlgorithm,
    #[serde(skip)]
    pub secret: Secret,
    /// Apexes it may touch; empty: every zone.
    pub zones: Vec<String>,
    /// Name patterns it may touch; empty: every name.
    pub names: Vec<String>,
    pub operations: Vec<String>,
    pub created: i64,
}

impl KeyRow {
    pub fn scope(&self) -> Result<KeyScope, StoreError> {
        KeyScope::from_columns(&self.zones.join(" "), &self.names.join(" "), &self.operations.join(" "))
            .map_err(|e| StoreError::Invalid(format!("stored key {}: {e}", self.name)))
    }
}

impl FromRow for KeyRow {
    const COLUMNS: &'static str = "name, algorithm, secret, zones, names, operations, created";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        let name = r.text(0)?;
        let list = |i: usize| -> Result<Vec<String>, StoreError> {
            Ok(r.text(i)?.split_whitespace().map(str::to_owned).collect())
        };
        Ok(Self {
            algorithm: r
                .text(1)?
                .parse()
                .map_err(|e: crate::model::Invalid| StoreError::Invalid(format!("stored key {name}: {e}")))?,
            secret: Secret::from_base64(&r.text(2)?)
                .map_err(|e| StoreError::Invalid(format!("stored key {name}: {e}")))?,
            zones: list(3)?,
            names: list(4)?,
            operations: list(5)?,
            created: r.int(6)?,
            name,
        })
    }
}

impl Database {
    /// Adds a key; its zones must exist.
    pub async fn add_key(
        &self,
        name: &str,
        algorithm: TsigAlgorithm,
        secret: &Secret,
        scope: &KeyScope,
    ) -> Result<KeyRow, StoreError> {
        let name = key_name(name)?.to_ascii();
        if self.exists("SELECT 1 FROM tsig_keys WHERE name = $1", params![name.clone()]).await? {
            return Err(StoreError::Conflict(format!(
                "key {name} already exists (`instadns key rm {name}` first to replace it)"
            )));
        }
        let known = self.zone_apexes().await?;
        for zone in &scope.zones {
            if !known.iter().any(|z| z.eq_ignore_ascii_case(&zone.to_ascii())) {
                return Err(StoreError::NotFound(format!("zone {zone} (see `instadns zone list`)")));
            }
        }
        let (zones, names, operations) = scope.to_columns();
        if operations.is_empty() {
            return Err(StoreError::Invalid(format!("key {name}: allow at least one operation")));
        }
        self.execute(
            "INSERT INTO tsig_keys (name, algorithm, secret, zones, names, operations) VALUES ($1, $2, $3, $4, $5, $6)",
            params![name.clone(), algorithm.to_string(), secret.to_base64(), zones, names, operations],
        )
        .await?;
        self.key(&name).await
    }

    pub async fn key(&self, name: &str) -> Result<KeyRow, StoreError> {
        let name = key_name(name)?.to_ascii();
        self.select_one("FROM tsig_keys WHERE name = $1", params![name.clone()])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("key {name} (see `instadns key list`)")))
    }

    /// Every key, by name.
    pub async fn list_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        self.select("FROM tsig_keys ORDER BY name", vec![]).await
    }

    pub async fn remove_key(&self, name: &str) -> Result<(), StoreError> {
        let name = key_name(name)?.to_ascii();
        if self.execute("DELETE FROM tsig_keys WHERE name = $1", params![name.clone()]).await? == 0 {
            return Err(StoreError::NotFound(format!("key {name} (see `instadns key list`)")));
        }
        Ok(())
    }
}
