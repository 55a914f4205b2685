//! Instances: which cluster runs each tenant instance, its names and TTL override, and
//! the tombstones of its moves.

use serde::{Deserialize, Serialize};

use super::sql::params;
use super::{Database, Instance, StoreError, Tombstone};
use crate::model::{names, time::unix_now};

/// An instance with what hangs off it.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceInfo {
    #[serde(flatten)]
    pub instance: Instance,
    pub cluster: String,
    pub domains: Vec<String>,
    pub tombstones: Vec<Tombstone>,
}

/// An instance in a list, with its cluster's name.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceListed {
    #[serde(flatten)]
    pub instance: Instance,
    pub cluster: String,
}

/// Instance ids are the platform's; ours only need to be non-negative.
fn check_id(id: i64) -> Result<(), StoreError> {
    if id < 0 {
        return Err(StoreError::Invalid(format!("instance id {id}: instance ids are not negative")));
    }
    Ok(())
}

fn check_names(name: Option<&str>, owner: Option<&str>) -> Result<(), StoreError> {
    if let Some(n) = name {
        names::label("instance name", n)?;
    }
    if let Some(o) = owner {
        names::label("owner", o)?;
    }
    if name.is_some() != owner.is_some() {
        return Err(StoreError::Invalid("an instance's name and owner go together".into()));
    }
    Ok(())
}

impl Database {
    pub async fn add_instance(
        &self,
        id: i64,
        cluster: &str,
        name: Option<&str>,
        owner: Option<&str>,
        ttl: Option<u32>,
    ) -> Result<(), StoreError> {
        check_id(id)?;
        check_names(name, owner)?;
        let cluster_id = self.cluster_id(cluster).await?;
        if self.instance(id).await?.is_some() {
            return Err(StoreError::Conflict(format!("instance {id} already exists")));
        }
        self.execute(
            "INSERT INTO instances (id, name, owner, cluster_id, ttl) VALUES ($1, $2, $3, $4, $5)",
            params![id, name, owner, cluster_id, ttl],
        )
        .await
        .map_err(|e| taken(e, name, owner))?;
        Ok(())
    }

    /// Renames an instance (name and owner together) or clears its names.
    pub async fn set_instance_names(
        &self,
        id: i64,
        name: Option<&str>,
        owner: Option<&str>,
    ) -> Result<(), StoreError> {
        check_names(name, owner)?;
        let changed = self
            .execute("UPDATE instances SET name = $1, owner = $2 WHERE id = $3", params![name, owner, id])
            .await
            .map_err(|e| taken(e, name, owner))?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("instance {id}")));
        }
        Ok(())
    }

    pub async fn instance(&self, id: i64) -> Result<Option<Instance>, StoreError> {
        self.select_one("FROM instances WHERE id = $1", params![id]).await
    }

    async fn existing_instance(&self, id: i64) -> Result<Instance, StoreError> {
        self.instance(id).await?.ok_or_else(|| StoreError::NotFound(format!("instance {id}")))
    }

    /// Moves an instance to another cluster and records a tombstone of the old one, in
    /// one transaction. Returns the tombstone.
    pub async fn move_instance(&self, id: i64, to: &str) -> Result<Tombstone, StoreError> {
        let instance = self.existing_instance(id).await?;
        let to_id = self.cluster_id(to).await?;
        if instance.cluster_id == to_id {
            return Err(StoreError::Conflict(format!("instance {id} is already on cluster {to:?}")));
        }
        let from = self.cluster_name(instance.cluster_id).await?;
        let now = unix_now();
        self.transaction(vec![
            (
                "INSERT INTO tombstones (instance_id, from_cluster, to_cluster, moved_at) VALUES ($1, $2, $3, $4)".into(),
                params![id, from.as_str(), to, now],
            ),
            ("UPDATE instances SET cluster_id = $1 WHERE id = $2".into(), params![to_id, id]),
        ])
        .await?;
        Ok(Tombstone { instance_id: id, from_cluster: from, to_cluster: to.to_owned(), moved_at: now })
    }

    async fn cluster_name(&self, cluster_id: i64) -> Result<String, StoreError> {
        self.query_opt("SELECT name FROM clusters WHERE id = $1", params![cluster_id])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("cluster {cluster_id}")))?
            .text(0)
    }

    pub async fn set_instance_ttl(&self, id: i64, ttl: Option<u32>) -> Result<(), StoreError> {
        match self.execute("UPDATE instances SET ttl = $1 WHERE id = $2", params![ttl, id]).await? {
            0 => Err(StoreError::NotFound(format!("instance {id}"))),
            _ => Ok(()),
        }
    }

    /// The TTL overrides of a cluster's instances: (override, instances), None first.
    pub async fn cluster_instance_ttls(&self, cluster: &str) -> Result<Vec<(Option<u32>, i64)>, StoreError> {
        let cluster_id = self.cluster_id(cluster).await?;
        let rows = self
            .query(
                "SELECT ttl, COUNT(*) FROM instances WHERE cluster_id = $1 GROUP BY ttl ORDER BY ttl IS NOT NULL, ttl",
                params![cluster_id],
            )
            .await?;
        rows.iter().map(|r| Ok((r.opt_u32(0)?, r.int(1)?))).collect()
    }

    /// Sets (or clears) the TTL override of every instance on a cluster; returns how many.
    pub async fn set_cluster_instances_ttl(
        &self,
        cluster: &str,
        ttl: Option<u32>,
    ) -> Result<u64, StoreError> {
        let cluster_id = self.cluster_id(cluster).await?;
        self.execute("UPDATE instances SET ttl = $1 WHERE cluster_id = $2", params![ttl, cluster_id]).await
    }

    /// Removes an instance. Its custom domains go with it only with `force`; otherwise
    /// the error names them.
    pub async fn remove_instance(&self, id: i64, force: bool) -> Result<(), StoreError> {
        let domains = self.instance_domains(id).await?;
        if !force && !domains.is_empty() {
            return Err(StoreError::Conflict(format!(
                "instance {id} still has {} custom domain(s) ({}); remove them first or use --force to remove them with it",
                domains.len(),
                domains.join(", ")
            )));
        }
        match self.execute("DELETE FROM instances WHERE id = $1", params![id]).await? {
            0 => Err(StoreError::NotFound(format!("instance {id}"))),
            _ => Ok(()),
        }
    }

    async fn instance_domains(&self, id: i64) -> Result<Vec<String>, StoreError> {
        self.query("SELECT hostname FROM domains WHERE instance_id = $1 ORDER BY hostname", params![id])
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect()
    }

    pub async fn show_instance(&self, id: i64) -> Result<InstanceInfo, StoreError> {
        let instance = self.existing_instance(id).await?;
        let cluster = self.cluster_name(instance.cluster_id).await?;
        let domains = self.instance_domains(id).await?;
        let tombstones =
            self.select("FROM tombstones WHERE instance_id = $1 ORDER BY moved_at, id", params![id]).await?;
        Ok(InstanceInfo { instance, cluster, domains, tombstones })
    }

    /// Instances by id, all or those of one cluster, at most `limit` after id `after`.
    pub async fn list_instances(
        &self,
        cluster: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<InstanceListed>, StoreError> {
        let select = "SELECT i.id, i.name, i.owner, i.cluster_id, i.ttl, c.name FROM instances i \
                      JOIN clusters c ON c.id = i.cluster_id";
        let rows = match cluster {
            Some(c) => {
                let cid = self.cluster_id(c).await?;
                self.query(
                    &format!("{select} WHERE i.cluster_id = $1 AND i.id > $2 ORDER BY i.id LIMIT $3"),
                    params![cid, after, limit],
                )
                .await?
            }
            None => {
                self.query(&format!("{select} WHERE i.id > $1 ORDER BY i.id LIMIT $2"), params![after, limit])
                    .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(InstanceListed {
                    instance: <Instance as super::FromRow>::from_row(r)?,
                    cluster: r.text(5)?,
                })
            })
            .collect()
    }
}

/// A unique violation on (owner, name) as the conflict it is.
fn taken(e: StoreError, name: Option<&str>, owner: Option<&str>) -> StoreError {
    if e.is_unique_violation() {
        StoreError::Conflict(format!(
            "{}.{} is taken by another instance",
            name.unwrap_or_default(),
            owner.unwrap_or_default()
        ))
    } else {
        e
    }
}
