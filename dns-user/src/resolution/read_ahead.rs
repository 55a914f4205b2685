//! Instances read ahead: a zone walk reads a page of instances in one query, then
//! resolves every name they make as a query would be resolved. Within the walk's task
//! (and nowhere else: queries never see it) the resolver takes those instances from the
//! page instead of asking the database once per name and type.

use std::{collections::HashMap, future::Future, sync::Arc};

use crate::store::Instance;

tokio::task_local! {
    static READ_AHEAD: Arc<ReadAhead>;
}

/// A page of instances, by id and by (owner, name).
pub struct ReadAhead {
    by_id: HashMap<i64, Instance>,
    by_owner_name: HashMap<(String, String), i64>,
}

impl ReadAhead {
    pub fn new(page: &[Instance]) -> Self {
        let by_id = page.iter().map(|i| (i.id, i.clone())).collect();
        let by_owner_name =
            page.iter().filter_map(|i| Some(((i.owner.clone()?, i.name.clone()?), i.id))).collect();
        Self { by_id, by_owner_name }
    }

    /// Runs `work` with this page read ahead.
    pub async fn scope<F: Future>(self: Arc<Self>, work: F) -> F::Output {
        READ_AHEAD.scope(self, work).await
    }
}

/// The instance `id` if the running walk read it ahead.
pub(super) fn by_id(id: i64) -> Option<Instance> {
    READ_AHEAD.try_with(|page| page.by_id.get(&id).cloned()).ok().flatten()
}

/// The instance with `owner` and `name` if the running walk read it ahead.
pub(super) fn by_owner_name(owner: &str, name: &str) -> Option<Instance> {
    READ_AHEAD
        .try_with(|page| {
            let id = page.by_owner_name.get(&(owner.to_owned(), name.to_owned()))?;
            page.by_id.get(id).cloned()
        })
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: i64, owner: Option<&str>, name: Option<&str>) -> Instance {
        Instance { id, name: name.map(Into::into), owner: owner.map(Into::into), cluster_id: 1, ttl: None }
    }

    #[tokio::test]
    async fn instances_are_read_ahead_only_inside_the_walk() {
        let page =
            Arc::new(ReadAhead::new(&[instance(7, Some("alice"), Some("blog")), instance(8, None, None)]));
        assert!(by_id(7).is_none(), "outside a walk nothing is read ahead");
        page.scope(async {
            assert_eq!(by_id(7).map(|i| i.id), Some(7));
            assert_eq!(by_id(8).map(|i| i.id), Some(8));
            assert!(by_id(9).is_none());
            assert_eq!(by_owner_name("alice", "blog").map(|i| i.id), Some(7));
            assert!(by_owner_name("alice", "shop").is_none());
        })
        .await;
    }
}
