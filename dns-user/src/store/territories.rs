//! Territories: named sets of client networks for directional answers.

use serde::Serialize;

use super::sql::params;
use super::{Database, StoreError, TerritoryPrefixRow, sql::Statement};
use crate::model::{Prefix, names};

/// A territory and its networks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TerritoryInfo {
    pub name: String,
    pub prefixes: Vec<String>,
    /// Cluster addresses answered only to this territory's clients.
    pub addresses: i64,
}

impl Database {
    /// Adds a territory with its networks, in one transaction (the kernel's tries change
    /// once).
    pub async fn add_territory(&self, name: &str, prefixes: &[Prefix]) -> Result<(), StoreError> {
        names::identifier("territory", name)?;
        if self.exists("SELECT 1 FROM territories WHERE name = $1", params![name]).await? {
            return Err(StoreError::Conflict(format!("territory {name:?} already exists")));
        }
        let count = self.count("SELECT COUNT(*) FROM territories", vec![]).await?;
        if count as usize >= dns_common::maps::MAX_TERRITORIES {
            return Err(StoreError::Invalid(format!(
                "territory {name:?}: at most {} territories",
                dns_common::maps::MAX_TERRITORIES
            )));
        }
        let mut statements: Vec<Statement> =
            vec![("INSERT INTO territories (name) VALUES ($1)".into(), params![name])];
        for p in prefixes {
            statements.push((
                "INSERT INTO territory_prefixes (territory_id, prefix) SELECT id, $2 FROM territories WHERE name = $1 \
                 ON CONFLICT DO NOTHING"
                    .into(),
                params![name, p.to_string()],
            ));
        }
        self.transaction(statements).await?;
        Ok(())
    }

    /// Changes a territory's networks: with `replace`, drops every network first; then
    /// adds `add` and removes `remove`. One transaction.
    pub async fn set_territory(
        &self,
        name: &str,
        replace: bool,
        add: &[Prefix],
        remove: &[Prefix],
    ) -> Result<(), StoreError> {
        let id = self.territory_id(name).await?;
        let mut statements: Vec<Statement> = Vec::new();
        if replace {
            statements.push(("DELETE FROM territory_prefixes WHERE territory_id = $1".into(), params![id]));
        }
        for p in remove {
            statements.push((
                "DELETE FROM territory_prefixes WHERE territory_id = $1 AND prefix = $2".into(),
                params![id, p.to_string()],
            ));
        }
        for p in add {
            statements.push((
                "INSERT INTO territory_prefixes (territory_id, prefix) VALUES ($1, $2) ON CONFLICT DO NOTHING".into(),
                params![id, p.to_string()],
            ));
        }
        if !statements.is_empty() {
            self.transaction(statements).await?;
        }
        Ok(())
    }

    async fn territory_id(&self, name: &str) -> Result<i64, StoreError> {
        self.query_opt("SELECT id FROM territories WHERE name = $1", params![name])
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("territory {name:?} (see `instadns territory list`)"))
            })?
            .int(0)
    }

    /// Removes a territory no address uses.
    pub async fn remove_territory(&self, name: &str) -> Result<(), StoreError> {
        let id = self.territory_id(name).await?;
        let users =
            self.count("SELECT COUNT(*) FROM cluster_addresses WHERE territory = $1", params![name]).await?;
        if users > 0 {
            return Err(StoreError::Conflict(format!(
                "territory {name:?} is used by {users} cluster address(es); remove or change them first"
            )));
        }
        self.execute("DELETE FROM territories WHERE id = $1", params![id]).await?;
        Ok(())
    }

    /// Every territory's name (in id order) and every prefix with its territory.
    pub async fn territory_rows(&self) -> Result<(Vec<String>, Vec<TerritoryPrefixRow>), StoreError> {
        let names = self.query("SELECT name FROM territories ORDER BY id", vec![]).await?;
        let prefixes = self
            .select::<TerritoryPrefixRow>(
                "FROM territory_prefixes p JOIN territories t ON t.id = p.territory_id ORDER BY t.id, p.prefix",
                vec![],
            )
            .await?;
        Ok((names.iter().map(|r| r.text(0)).collect::<Result<_, StoreError>>()?, prefixes))
    }

    /// Every territory, in id order.
    pub async fn list_territories(&self) -> Result<Vec<TerritoryInfo>, StoreError> {
        let (names, prefixes) = self.territory_rows().await?;
        let users = self
            .query("SELECT territory, COUNT(*) FROM cluster_addresses WHERE territory IS NOT NULL GROUP BY territory", vec![])
            .await?;
        let mut counts = std::collections::HashMap::new();
        for r in &users {
            counts.insert(r.text(0)?, r.int(1)?);
        }
        Ok(names
            .into_iter()
            .map(|name| TerritoryInfo {
                prefixes: prefixes.iter().filter(|p| p.territory == name).map(|p| p.prefix.clone()).collect(),
                addresses: counts.get(&name).copied().unwrap_or(0),
                name,
            })
            .collect())
    }

    pub async fn show_territory(&self, name: &str) -> Result<TerritoryInfo, StoreError> {
        self.territory_id(name).await?;
        self.list_territories()
            .await?
            .into_iter()
            .find(|t| t.name == name)
            .ok_or_else(|| StoreError::NotFound(format!("territory {name:?}")))
    }
}
