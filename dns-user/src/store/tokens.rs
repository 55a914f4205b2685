//! Bearer tokens of the HTTP management API, kept as hashes (`model::token`): the
//! secret is shown once, when the token is made, and never stored.

use serde::Serialize;

use super::{Database, FromRow, Row, StoreError, sql::params};
use crate::model::{
    time::unix_now,
    token::{Access, TokenScope, new_token, token_hash},
};

/// A stored token (its hash is not part of it: nothing above the store needs it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenRow {
    pub name: String,
    pub access: Access,
    /// Apexes it may touch; empty: every zone and the nouns outside zones.
    pub zones: Vec<String>,
    /// Unix time.
    pub created: i64,
}

impl TokenRow {
    pub fn scope(&self) -> TokenScope {
        TokenScope { access: self.access, zones: self.zones.clone() }
    }
}

impl FromRow for TokenRow {
    const COLUMNS: &'static str = "name, access, zones, created";

    fn from_row(r: &Row) -> Result<Self, StoreError> {
        let name = r.text(0)?;
        Ok(Self {
            access: r
                .text(1)?
                .parse()
                .map_err(|e| StoreError::Invalid(format!("stored token {name}: {e}")))?,
            zones: r.text(2)?.split_whitespace().map(str::to_owned).collect(),
            created: r.int(3)?,
            name,
        })
    }
}

/// Longest token name: it is written into every audit row.
const MAX_TOKEN_NAME: usize = 64;

fn token_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > MAX_TOKEN_NAME
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(StoreError::Invalid(format!(
            "token name {name:?}: use 1 to {MAX_TOKEN_NAME} letters, digits, '-', '_' or '.'"
        )));
    }
    Ok(())
}

impl Database {
    /// Makes a token; returns it with its secret, which is not stored (only its hash).
    /// Its zones must exist.
    pub async fn add_api_token(
        &self,
        name: &str,
        access: Access,
        zones: &[String],
    ) -> Result<(TokenRow, String), StoreError> {
        token_name(name)?;
        let scope = TokenScope::new(access, zones)?;
        if self.exists("SELECT 1 FROM api_tokens WHERE name = $1", params![name]).await? {
            return Err(StoreError::Conflict(format!(
                "token {name} already exists (`instadns token rm {name}` first to replace it)"
            )));
        }
        let known = self.zone_apexes().await?;
        for zone in &scope.zones {
            if !known.iter().any(|z| z == zone) {
                return Err(StoreError::NotFound(format!("zone {zone} (see `instadns zone list`)")));
            }
        }
        let secret = new_token();
        self.execute(
            "INSERT INTO api_tokens (name, token_hash, access, zones, created) VALUES ($1, $2, $3, $4, $5)",
            params![name, token_hash(&secret), access.to_string(), scope.zones.join(" "), unix_now()],
        )
        .await
        .map_err(|e| {
            if e.is_unique_violation() {
                StoreError::Conflict(format!("token {name} already exists"))
            } else {
                e
            }
        })?;
        Ok((self.api_token(name).await?, secret))
    }

    pub async fn api_token(&self, name: &str) -> Result<TokenRow, StoreError> {
        self.select_one("FROM api_tokens WHERE name = $1", params![name])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {name} (see `instadns token list`)")))
    }

    /// The token whose secret this is, if any.
    pub async fn api_token_by_secret(&self, secret: &str) -> Result<Option<TokenRow>, StoreError> {
        self.select_one("FROM api_tokens WHERE token_hash = $1", params![token_hash(secret)]).await
    }

    /// Every token, by name.
    pub async fn list_api_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.select("FROM api_tokens ORDER BY name", vec![]).await
    }

    pub async fn remove_api_token(&self, name: &str) -> Result<(), StoreError> {
        if self.execute("DELETE FROM api_tokens WHERE name = $1", params![name]).await? == 0 {
            return Err(StoreError::NotFound(format!("token {name} (see `instadns token list`)")));
        }
        Ok(())
    }
}
