//! Custom domains: hostnames of customers that answer like one of our instances.

use super::sql::params;
use super::{Database, DomainRow, StoreError};
use crate::model::names;

impl Database {
    pub async fn add_domain(&self, hostname: &str, instance: i64) -> Result<(), StoreError> {
        let hostname = names::absolute(hostname, "custom domain")?;
        if self.instance(instance).await?.is_none() {
            return Err(StoreError::NotFound(format!("instance {instance}")));
        }
        if super::zones::closest_zone(&hostname, &self.zone_apexes().await?).is_none() {
            let host = hostname.trim_end_matches('.');
            return Err(StoreError::Invalid(format!(
                "custom domain {hostname} lies outside every zone we serve, so it could never be answered: \
                 add its zone (`instadns zone add {parent} --ns ...`, and have the customer delegate it to us), \
                 or have the customer point {host} by CNAME at one of the instance's names",
                parent = host.split_once('.').map_or(host, |(_, p)| p)
            )));
        }
        if let Some(owner) = self.domain(&hostname).await? {
            return Err(StoreError::Conflict(format!(
                "{hostname} already belongs to instance {}",
                owner.instance
            )));
        }
        self.execute(
            "INSERT INTO domains (hostname, instance_id) VALUES ($1, $2)",
            params![hostname, instance],
        )
        .await?;
        Ok(())
    }

    /// Moves a custom domain to another instance.
    pub async fn set_domain(&self, hostname: &str, instance: i64) -> Result<(), StoreError> {
        let hostname = names::absolute(hostname, "custom domain")?;
        if self.instance(instance).await?.is_none() {
            return Err(StoreError::NotFound(format!("instance {instance}")));
        }
        match self
            .execute(
                "UPDATE domains SET instance_id = $1 WHERE hostname = $2",
                params![instance, hostname.as_str()],
            )
            .await?
        {
            0 => Err(StoreError::NotFound(format!("custom domain {hostname}"))),
            _ => Ok(()),
        }
    }

    pub async fn remove_domain(&self, hostname: &str) -> Result<(), StoreError> {
        let hostname = names::absolute(hostname, "custom domain")?;
        match self.execute("DELETE FROM domains WHERE hostname = $1", params![hostname.as_str()]).await? {
            0 => Err(StoreError::NotFound(format!("custom domain {hostname}"))),
            _ => Ok(()),
        }
    }

    pub async fn domain(&self, hostname: &str) -> Result<Option<DomainRow>, StoreError> {
        let hostname = names::absolute(hostname, "custom domain")?;
        self.select_one("FROM domains WHERE hostname = $1", params![hostname]).await
    }

    /// Custom domains by hostname, all or those of one instance, at most `limit` after
    /// hostname `after`.
    pub async fn list_domains(
        &self,
        instance: Option<i64>,
        after: &str,
        limit: i64,
    ) -> Result<Vec<DomainRow>, StoreError> {
        match instance {
            Some(id) => {
                self.select(
                    "FROM domains WHERE instance_id = $1 AND hostname > $2 ORDER BY hostname LIMIT $3",
                    params![id, after, limit],
                )
                .await
            }
            None => {
                self.select(
                    "FROM domains WHERE hostname > $1 ORDER BY hostname LIMIT $2",
                    params![after, limit],
                )
                .await
            }
        }
    }
}
