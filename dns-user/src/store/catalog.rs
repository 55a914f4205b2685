//! What the resolver reads ([`Store`]): the small tables whole, into the catalog; the
//! large ones (instances, custom domains, challenges, tombstones) per lookup.

use super::sql::params;
use super::{
    AcmeChallenge, AddressRow, CatalogRows, CheckRow, ClusterRow, Database, Instance, NsRow, RecordRow,
    RuleRow, ServiceRow, Store, StoreError, Tombstone, ZoneRow,
};

impl Store for Database {
    async fn catalog_rows(&self) -> Result<CatalogRows, StoreError> {
        let (territories, territory_prefixes) = self.territory_rows().await?;
        Ok(CatalogRows {
            zones: self.select::<ZoneRow>("FROM zones ORDER BY id", vec![]).await?,
            ns: self.select::<NsRow>("FROM zone_ns ORDER BY zone_id, nsdname", vec![]).await?,
            records: self.select::<RecordRow>("FROM records ORDER BY id", vec![]).await?,
            rules: self.select::<RuleRow>("FROM name_rules ORDER BY id", vec![]).await?,
            clusters: self.select::<ClusterRow>("FROM clusters ORDER BY id", vec![]).await?,
            services: self
                .select::<ServiceRow>("FROM cluster_services ORDER BY cluster_id, service", vec![])
                .await?,
            addresses: self
                .select::<AddressRow>("FROM cluster_addresses ORDER BY cluster_id, queue, address", vec![])
                .await?,
            checks: self.select::<CheckRow>("FROM cluster_checks ORDER BY cluster_id", vec![]).await?,
            territories,
            territory_prefixes,
            keys: self.list_keys().await?,
        })
    }

    async fn instance_by_id(&self, id: i64) -> Result<Option<Instance>, StoreError> {
        if let Some(byo) = &self.byo {
            return byo.instance_by_id(id, self).await;
        }
        self.instance(id).await
    }

    async fn instance_by_owner_name(&self, owner: &str, name: &str) -> Result<Option<Instance>, StoreError> {
        self.select_one("FROM instances WHERE owner = $1 AND name = $2", params![owner, name]).await
    }

    async fn owner_exists(&self, owner: &str) -> Result<bool, StoreError> {
        self.exists("SELECT 1 FROM instances WHERE owner = $1 AND name IS NOT NULL LIMIT 1", params![owner])
            .await
    }

    async fn domain_instance(&self, hostname: &str) -> Result<Option<i64>, StoreError> {
        self.query_opt("SELECT instance_id FROM domains WHERE hostname = $1", params![hostname])
            .await?
            .map(|r| r.int(0))
            .transpose()
    }

    async fn domain_names(&self) -> Result<Vec<String>, StoreError> {
        self.query("SELECT hostname FROM domains", vec![]).await?.iter().map(|r| r.text(0)).collect()
    }

    async fn acme(&self, name: &str) -> Result<Vec<AcmeChallenge>, StoreError> {
        self.select("FROM acme_challenges WHERE name = $1 ORDER BY kind, value", params![name]).await
    }

    async fn last_tombstone(&self, instance_id: i64) -> Result<Option<Tombstone>, StoreError> {
        self.select_one(
            "FROM tombstones WHERE instance_id = $1 ORDER BY moved_at DESC, id DESC LIMIT 1",
            params![instance_id],
        )
        .await
    }

    async fn instances_after(&self, after: i64, limit: i64) -> Result<Vec<Instance>, StoreError> {
        self.select("FROM instances WHERE id > $1 ORDER BY id LIMIT $2", params![after, limit]).await
    }

    async fn acme_names(&self) -> Result<Vec<String>, StoreError> {
        self.query("SELECT DISTINCT name FROM acme_challenges", vec![])
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect()
    }

    fn instances_enumerable(&self) -> bool {
        self.byo.is_none()
    }

    async fn apply_update(
        &self,
        update: &super::update::ZoneUpdate,
    ) -> Result<super::update::UpdateOutcome, StoreError> {
        Database::apply_update(self, update).await
    }
}
