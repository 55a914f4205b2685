//! Clusters: per-service CNAME targets, load-balancer addresses with their steering
//! attributes, and health checks.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::sql::params;
use super::{
    CheckRow, ClusterRow, Database, StoreError,
    sql::{Statement, Value},
};
use crate::model::{AddressOrder, AddressSpec, Fallback, HealthCheck, Pick, names};

/// Changes to a cluster (or, for a new one, what it starts with).
#[derive(Clone, Debug, Default)]
pub struct ClusterUpdate {
    /// (service, target) to set.
    pub set_services: Vec<(String, String)>,
    pub remove_services: Vec<String>,
    /// Addresses to add, or to update if present.
    pub add_addresses: Vec<AddressSpec>,
    pub remove_addresses: Vec<IpAddr>,
    pub order: Option<AddressOrder>,
    pub pick: Option<Pick>,
    pub fallback: Option<Fallback>,
    /// A health check to set.
    pub check: Option<HealthCheck>,
    pub remove_check: bool,
}

/// A service of a cluster and the target its names CNAME to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Service {
    pub service: String,
    pub target: String,
}

/// A cluster with its services, addresses, check and how many instances it hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClusterInfo {
    #[serde(flatten)]
    pub cluster: ClusterRow,
    pub services: Vec<Service>,
    pub addresses: Vec<AddressSpec>,
    pub check: Option<HealthCheck>,
    pub instances: i64,
}

/// The cluster a statement is about: a known id, or (while it is being added in the
/// same transaction) its name.
#[derive(Clone, Copy)]
enum ClusterRef<'a> {
    Id(i64),
    New(&'a str),
}

impl ClusterRef<'_> {
    /// The SQL for the cluster's id as parameter `$1`, and that parameter.
    fn sql(self) -> (&'static str, Value) {
        match self {
            Self::Id(id) => ("$1", id.into()),
            Self::New(name) => ("(SELECT id FROM clusters WHERE name = $1)", name.into()),
        }
    }
}

impl Database {
    pub async fn cluster_id(&self, name: &str) -> Result<i64, StoreError> {
        self.query_opt("SELECT id FROM clusters WHERE name = $1", params![name])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("cluster {name:?} (see `instadns cluster list`)")))?
            .int(0)
    }

    /// Adds a cluster with its services, addresses and check, in one transaction.
    pub async fn add_cluster(&self, name: &str, update: &ClusterUpdate) -> Result<(), StoreError> {
        names::identifier("cluster", name)?;
        if self.exists("SELECT 1 FROM clusters WHERE name = $1", params![name]).await? {
            return Err(StoreError::Conflict(format!("cluster {name:?} already exists")));
        }
        let mut statements: Vec<Statement> = vec![(
            "INSERT INTO clusters (name, address_order, pick, fallback) VALUES ($1, $2, $3, $4)".into(),
            params![
                name,
                update.order.unwrap_or(AddressOrder::Fixed).as_str(),
                update.pick.unwrap_or(Pick::All).as_str(),
                update.fallback.unwrap_or(Fallback::All).as_str()
            ],
        )];
        statements.extend(self.update_statements(ClusterRef::New(name), update).await?);
        self.transaction(statements).await?;
        Ok(())
    }

    /// Changes a cluster, in one transaction.
    pub async fn set_cluster(&self, name: &str, update: &ClusterUpdate) -> Result<(), StoreError> {
        let id = self.cluster_id(name).await?;
        let mut statements = self.update_statements(ClusterRef::Id(id), update).await?;
        let (cluster, param) = ClusterRef::Id(id).sql();
        for (column, value) in [
            ("address_order", update.order.map(AddressOrder::as_str)),
            ("pick", update.pick.map(Pick::as_str)),
            ("fallback", update.fallback.map(Fallback::as_str)),
        ] {
            if let Some(value) = value {
                statements.push((
                    format!("UPDATE clusters SET {column} = $2 WHERE id = {cluster}"),
                    vec![param.clone(), value.into()],
                ));
            }
        }
        if !statements.is_empty() {
            self.transaction(statements).await?;
        }
        Ok(())
    }

    /// The statements applying `update`'s services, addresses and check.
    async fn update_statements(
        &self,
        cluster: ClusterRef<'_>,
        update: &ClusterUpdate,
    ) -> Result<Vec<Statement>, StoreError> {
        let (id, param) = cluster.sql();
        let with = |sql: String, mut rest: Vec<Value>| -> Statement {
            rest.insert(0, param.clone());
            (sql, rest)
        };
        let mut statements = Vec::new();
        for (service, target) in &update.set_services {
            names::label("service", service)?;
            let target = names::absolute(target, &format!("target of service {service}"))?;
            statements.push(with(
                format!(
                    "INSERT INTO cluster_services (cluster_id, service, target) VALUES ({id}, $2, $3) \
                     ON CONFLICT (cluster_id, service) DO UPDATE SET target = excluded.target"
                ),
                params![service.as_str(), target],
            ));
        }
        for service in &update.remove_services {
            statements.push(with(
                format!("DELETE FROM cluster_services WHERE cluster_id = {id} AND service = $2"),
                params![service.as_str()],
            ));
        }
        for address in &update.add_addresses {
            if let Some(territory) = &address.territory
                && !self
                    .exists("SELECT 1 FROM territories WHERE name = $1", params![territory.as_str()])
                    .await?
            {
                return Err(StoreError::NotFound(format!(
                    "territory {territory:?} (add it with `instadns territory add {territory}`)"
                )));
            }
            statements.push(with(
                format!(
                    "INSERT INTO cluster_addresses (cluster_id, address, weight, queue, territory) \
                     VALUES ({id}, $2, $3, $4, $5) ON CONFLICT (cluster_id, address) DO UPDATE SET \
                     weight = excluded.weight, queue = excluded.queue, territory = excluded.territory"
                ),
                params![address.ip.to_string(), address.weight, address.queue, address.territory.as_deref()],
            ));
        }
        for address in &update.remove_addresses {
            statements.push(with(
                format!("DELETE FROM cluster_addresses WHERE cluster_id = {id} AND address = $2"),
                params![address.to_string()],
            ));
        }
        if update.remove_check {
            statements.push(with(format!("DELETE FROM cluster_checks WHERE cluster_id = {id}"), vec![]));
        }
        if let Some(c) = &update.check {
            c.validate()?;
            statements.push(with(
                format!(
                    "INSERT INTO cluster_checks (cluster_id, kind, port, path, host, expect_status, interval_ms, \
                     timeout_ms, rise, fall) VALUES ({id}, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (cluster_id) DO UPDATE SET kind = excluded.kind, port = excluded.port, \
                     path = excluded.path, host = excluded.host, expect_status = excluded.expect_status, \
                     interval_ms = excluded.interval_ms, timeout_ms = excluded.timeout_ms, rise = excluded.rise, \
                     fall = excluded.fall"
                ),
                params![
                    c.target.kind.as_str(),
                    u32::from(c.target.port),
                    c.target.path.as_str(),
                    c.host.as_deref(),
                    u32::from(c.expect_status),
                    c.interval_ms,
                    c.timeout_ms,
                    c.rise,
                    c.fall
                ],
            ));
        }
        Ok(statements)
    }

    /// Removes a cluster that hosts no instance (its services, addresses and check go
    /// with it); otherwise the error says how many it hosts and what to do.
    pub async fn remove_cluster(&self, name: &str) -> Result<(), StoreError> {
        let id = self.cluster_id(name).await?;
        let instances =
            self.count("SELECT COUNT(*) FROM instances WHERE cluster_id = $1", params![id]).await?;
        if instances > 0 {
            return Err(StoreError::Conflict(format!(
                "cluster {name} still hosts {instances} instance(s); move them (`instadns instance move ID --to CLUSTER`) or remove them first"
            )));
        }
        self.execute("DELETE FROM clusters WHERE id = $1", params![id]).await?;
        Ok(())
    }

    /// Every cluster, by name.
    pub async fn list_clusters(&self) -> Result<Vec<ClusterInfo>, StoreError> {
        let clusters = self.select::<ClusterRow>("FROM clusters ORDER BY name", vec![]).await?;
        let mut out = Vec::with_capacity(clusters.len());
        for cluster in clusters {
            out.push(self.cluster_info(cluster).await?);
        }
        Ok(out)
    }

    pub async fn show_cluster(&self, name: &str) -> Result<ClusterInfo, StoreError> {
        let cluster = self
            .select_one::<ClusterRow>("FROM clusters WHERE name = $1", params![name])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("cluster {name:?} (see `instadns cluster list`)")))?;
        self.cluster_info(cluster).await
    }

    async fn cluster_info(&self, cluster: ClusterRow) -> Result<ClusterInfo, StoreError> {
        let id = cluster.id;
        let services = self
            .query(
                "SELECT service, target FROM cluster_services WHERE cluster_id = $1 ORDER BY service",
                params![id],
            )
            .await?
            .iter()
            .map(|r| Ok(Service { service: r.text(0)?, target: r.text(1)? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let addresses = self
            .select::<super::AddressRow>(
                "FROM cluster_addresses WHERE cluster_id = $1 ORDER BY queue, address",
                params![id],
            )
            .await?
            .into_iter()
            .map(|a| {
                Ok(AddressSpec {
                    ip: a
                        .address
                        .parse()
                        .map_err(|_| StoreError::Invalid(format!("stored address {:?}", a.address)))?,
                    weight: a.weight,
                    queue: a.queue,
                    territory: a.territory,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let check =
            self.select_one::<CheckRow>("FROM cluster_checks WHERE cluster_id = $1", params![id]).await?;
        let instances =
            self.count("SELECT COUNT(*) FROM instances WHERE cluster_id = $1", params![id]).await?;
        Ok(ClusterInfo { cluster, services, addresses, check: check.map(|c| c.check), instances })
    }
}
