//! Territories: named sets of client networks for directional answers.

use serde::{Deserialize, Serialize};

use super::sql::params;
use super::{Database, StoreError, TerritoryPrefixRow, sql::Statement};
use crate::model::{Prefix, names};

/// A territory and its networks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TerritoryInfo {
    pub name: String,
    /// Its stable index (what the kernel's tries map its networks to), 1 to 63.
    pub index: u8,
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
        // The lowest index no territory holds: indices never move once given.
        let taken = self.query("SELECT idx FROM territories WHERE idx IS NOT NULL", vec![]).await?;
        let taken: std::collections::HashSet<i64> =
            taken.iter().map(|r| r.int(0)).collect::<Result<_, _>>()?;
        let Some(index) = (1..=dns_common::maps::MAX_TERRITORIES as i64).find(|i| !taken.contains(i)) else {
            return Err(StoreError::Invalid(format!(
                "territory {name:?}: at most {} territories",
                dns_common::maps::MAX_TERRITORIES
            )));
        };
        let mut statements: Vec<Statement> =
            vec![("INSERT INTO territories (name, idx) VALUES ($1, $2)".into(), params![name, index])];
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

    /// Every territory's name and index (in id order) and every prefix with its territory.
    pub async fn territory_rows(&self) -> Result<(Vec<(String, u8)>, Vec<TerritoryPrefixRow>), StoreError> {
        let names = self.query("SELECT name, idx FROM territories ORDER BY id", vec![]).await?;
        let prefixes = self
            .select::<TerritoryPrefixRow>(
                "FROM territory_prefixes p JOIN territories t ON t.id = p.territory_id ORDER BY t.id, p.prefix",
                vec![],
            )
            .await?;
        let names = names
            .iter()
            .map(|r| {
                let (name, index) = (r.text(0)?, r.int(1)?);
                let index = u8::try_from(index)
                    .ok()
                    .filter(|i| (1..=dns_common::maps::MAX_TERRITORIES as u8).contains(i))
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("territory {name:?}: index {index} outside 1..=63"))
                    })?;
                Ok((name, index))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((names, prefixes))
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
            .map(|(name, index)| TerritoryInfo {
                index,
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
