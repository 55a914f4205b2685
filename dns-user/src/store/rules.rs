//! A zone's name rules: patterns that map query names to instances.

use super::sql::params;
use super::{Database, RuleRow, StoreError, sql::Statement};
use crate::model::{names, rule::RuleSpec};

/// The statement adding `rule` to the zone at `apex` (absolute, lower-case).
pub(super) fn insert_rule(apex: &str, rule: &RuleSpec) -> Statement {
    (
        "INSERT INTO name_rules (zone_id, pattern, kind, ttl) SELECT id, $1, $2, $3 FROM zones WHERE apex = $4".into(),
        params![rule.pattern.to_string(), rule.kind.as_str(), rule.ttl, apex],
    )
}

impl Database {
    pub async fn add_rule(&self, apex: &str, rule: &RuleSpec) -> Result<(), StoreError> {
        let zone = self.zone_id(apex).await?;
        let pattern = rule.pattern.to_string();
        if self.rule(zone, &pattern).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "zone {apex} already has a rule {pattern}; change it with `zone rule set`"
            )));
        }
        let apex = names::absolute(apex, "zone")?;
        self.transaction(vec![insert_rule(&apex, rule)]).await?;
        Ok(())
    }

    /// Changes the kind and TTL of an existing rule.
    pub async fn set_rule(&self, apex: &str, rule: &RuleSpec) -> Result<(), StoreError> {
        let zone = self.zone_id(apex).await?;
        let changed = self
            .execute(
                "UPDATE name_rules SET kind = $1, ttl = $2 WHERE zone_id = $3 AND pattern = $4",
                params![rule.kind.as_str(), rule.ttl, zone, rule.pattern.to_string()],
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("rule {} in zone {apex}", rule.pattern)));
        }
        Ok(())
    }

    pub async fn remove_rule(&self, apex: &str, pattern: &str) -> Result<(), StoreError> {
        let zone = self.zone_id(apex).await?;
        match self
            .execute("DELETE FROM name_rules WHERE zone_id = $1 AND pattern = $2", params![zone, pattern])
            .await?
        {
            0 => Err(StoreError::NotFound(format!("rule {pattern:?} in zone {apex}"))),
            _ => Ok(()),
        }
    }

    /// A zone's rules, in the order they are tried.
    pub async fn list_rules(&self, apex: &str) -> Result<Vec<RuleRow>, StoreError> {
        let zone = self.zone_id(apex).await?;
        self.select("FROM name_rules WHERE zone_id = $1 ORDER BY id", params![zone]).await
    }

    async fn rule(&self, zone_id: i64, pattern: &str) -> Result<Option<RuleRow>, StoreError> {
        self.select_one("FROM name_rules WHERE zone_id = $1 AND pattern = $2", params![zone_id, pattern])
            .await
    }
}
