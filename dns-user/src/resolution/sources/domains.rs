//! Custom domains: a hostname delegated to us answers like its instance's host names.

use super::super::{At, DOMAIN_TTL, Resolution, Resolver, Step, Tag};
use crate::store::{Store, StoreError};

impl<S: Store> Resolver<S> {
    /// A custom domain of an instance (a hostname delegated to us) answers like the
    /// instance's host names.
    pub(in crate::resolution) async fn custom_domain(
        &self,
        at: At<'_>,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let At { catalog, name, .. } = at;
        let hostname = name.to_ascii();
        if !self.may_be_custom_domain(&hostname) {
            return Ok(None);
        }
        let Some(id) = self.store.domain_instance(&hostname).await? else { return Ok(None) };
        let Some(instance) = self.instance_by_id(id).await? else { return Ok(None) };
        let Some(cluster) = self.cluster_of(catalog, &instance, res) else { return Ok(None) };
        res.tag(Tag::Name(name.to_ascii()));
        res.note(|| format!("custom domain of instance {id}"));
        self.host_answer(at, cluster, instance.ttl.unwrap_or(DOMAIN_TTL), res);
        Ok(Some(Step::Done))
    }
}
