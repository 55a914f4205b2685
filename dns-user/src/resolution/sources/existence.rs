//! Which names exist: empty non-terminals (RFC 8020: a name with names below it
//! exists), and the names an instance makes exist (what a change of it can affect).

use hickory_proto::rr::Name;

use super::super::{Catalog, Resolver, Zone};
use crate::{
    model::pattern::{Captures, Var},
    store::{Store, StoreError},
};

impl<S: Store> Resolver<S> {
    /// A name with nothing of its own exists if names exist below it (RFC 8020): static
    /// records below it, or instance names of a rule whose leading labels it lacks.
    pub(in crate::resolution) async fn is_empty_non_terminal(
        &self,
        zone: &Zone,
        relative: &[&[u8]],
        name: &Name,
    ) -> Result<bool, StoreError> {
        if zone.has_records_below(name) {
            return Ok(true);
        }
        for rule in &zone.rules {
            let Some(caps) = rule.pattern.matches_ancestor(relative) else { continue };
            let exists = match (caps.id, caps.owner.as_deref()) {
                (Some(id), _) => self.instance_by_id(id).await?.is_some(),
                (None, Some(owner)) => self.store.owner_exists(owner).await?,
                // Only literal labels: the rule's subtree is a part of the zone's layout.
                (None, None) if caps.name.is_none() && caps.service.is_none() => true,
                _ => false,
            };
            if exists {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The names (lower-case, absolute) an instance with these fields makes exist,
    /// empty non-terminals included: what a change of the instance can affect.
    pub fn names_of_instance(&self, id: i64, owner: Option<&str>, name: Option<&str>) -> Vec<String> {
        let Some(catalog) = self.catalog() else { return Vec::new() };
        instance_names(&catalog, &catalog.service_names(), id, owner, name)
    }
}

/// The names (lower-case, absolute) the rules of `catalog` make for an instance with
/// these fields, empty non-terminals included; `services` are the catalog's service
/// names.
pub fn instance_names(
    catalog: &Catalog,
    services: &[String],
    id: i64,
    owner: Option<&str>,
    name: Option<&str>,
) -> Vec<String> {
    let mut out = Vec::new();
    for zone in catalog.zones() {
        let apex = zone.apex.to_ascii();
        for rule in &zone.rules {
            let uses_service = rule.pattern.uses(Var::Service);
            let service_values: Vec<Option<String>> =
                if uses_service { services.iter().cloned().map(Some).collect() } else { vec![None] };
            for service in service_values {
                let caps = Captures {
                    id: Some(id),
                    service,
                    name: name.map(str::to_owned),
                    owner: owner.map(str::to_owned),
                };
                for relative in rule.pattern.instantiate(&caps).into_iter().flatten() {
                    out.push(format!("{relative}.{apex}").to_ascii_lowercase());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}
