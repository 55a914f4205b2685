//! ACME DNS-01 challenge answers at `_acme-challenge.NAME`.

use super::sql::params;
use super::{AcmeChallenge, Database, StoreError, sql::Statement};
use crate::model::{AcmeKind, names};

/// Longest TXT value (one character-string, RFC 1035 section 3.3.14).
pub const MAX_TXT_LEN: usize = 255;

impl Database {
    /// Sets a DNS-01 answer for `_acme-challenge.<name>`: a TXT value (several may
    /// coexist, as during a renewal with two authorizations), or a CNAME that delegates
    /// validation to another zone (replacing anything else there).
    pub async fn set_acme(&self, challenge: &AcmeChallenge) -> Result<(), StoreError> {
        let name = names::absolute(&challenge.name, "validated name")?;
        let value = match challenge.kind {
            AcmeKind::Txt => {
                if challenge.value.is_empty() || challenge.value.len() > MAX_TXT_LEN {
                    return Err(StoreError::Invalid(format!(
                        "challenge TXT value of {} characters: 1 to {MAX_TXT_LEN}",
                        challenge.value.len()
                    )));
                }
                challenge.value.clone()
            }
            AcmeKind::Cname => names::absolute(&challenge.value, "challenge CNAME target")?,
        };
        let clear: Statement = match challenge.kind {
            AcmeKind::Cname => ("DELETE FROM acme_challenges WHERE name = $1".into(), params![name.as_str()]),
            AcmeKind::Txt => (
                "DELETE FROM acme_challenges WHERE name = $1 AND kind = 'cname'".into(),
                params![name.as_str()],
            ),
        };
        let insert: Statement = (
            "INSERT INTO acme_challenges (name, kind, value, ttl, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name, kind, value) DO UPDATE SET ttl = excluded.ttl, expires_at = excluded.expires_at"
                .into(),
            params![name.as_str(), challenge.kind.as_str(), value, challenge.ttl, challenge.expires_at],
        );
        self.transaction(vec![clear, insert]).await?;
        Ok(())
    }

    /// Removes every challenge answer of `name` (or only one TXT value).
    pub async fn clear_acme(&self, name: &str, value: Option<&str>) -> Result<u64, StoreError> {
        let name = names::absolute(name, "validated name")?;
        let n = match value {
            Some(v) => {
                self.execute(
                    "DELETE FROM acme_challenges WHERE name = $1 AND value = $2",
                    params![name.as_str(), v],
                )
                .await?
            }
            None => {
                self.execute("DELETE FROM acme_challenges WHERE name = $1", params![name.as_str()]).await?
            }
        };
        if n == 0 {
            return Err(StoreError::NotFound(format!("challenge for {name}")));
        }
        Ok(n)
    }

    /// Challenge answers, all or those of one validated name (expired ones included).
    pub async fn list_acme(&self, name: Option<&str>) -> Result<Vec<AcmeChallenge>, StoreError> {
        match name {
            Some(n) => {
                let n = names::absolute(n, "validated name")?;
                self.select("FROM acme_challenges WHERE name = $1 ORDER BY kind, value", params![n]).await
            }
            None => self.select("FROM acme_challenges ORDER BY name, kind, value", vec![]).await,
        }
    }
}
