//! Wildcards (RFC 4592): a name that does not exist is answered from the source of
//! synthesis `*.<closest encloser>`, with the query name as owner. Existing names
//! (empty non-terminals included) block the wildcard; other types get NODATA; a
//! wildcard CNAME is followed like any CNAME. The source is a static `*` record set or
//! a wildcard rule (`*.{id}`) matching it.

use hickory_proto::rr::{Name, Record};

use super::{
    super::{At, Resolution, Resolver, Step, Tag, Zone},
    records,
};
use crate::store::{Store, StoreError};

impl<S: Store> Resolver<S> {
    /// The answer synthesized for `at.name` (which does not exist), if a wildcard covers it.
    pub(in crate::resolution) async fn wildcard(
        &self,
        at: At<'_>,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let At { zone, name, .. } = at;
        if !zone.has_wildcards {
            return Ok(None);
        }
        // The closest encloser: the nearest ancestor that exists (RFC 4592 section 3.3.1).
        let mut encloser = name.base_name();
        while encloser != zone.apex && !self.name_exists(zone, &encloser).await? {
            encloser = encloser.base_name();
        }
        let Ok(source) = encloser.prepend_label("*") else { return Ok(None) };
        let Some(stored) = zone.records_at(&source) else {
            let step = self.wildcard_rule(at, &source, res).await?;
            if step.is_some() && !at.chasing {
                res.synthesized_below = Some(encloser);
            }
            return Ok(step);
        };
        res.note(|| format!("synthesized from the wildcard {source}"));
        if !at.chasing {
            res.synthesized_below = Some(encloser.clone());
        }
        // The answer depends on the name staying nonexistent.
        res.tag(Tag::Name(name.to_ascii()));
        let synthesized: Vec<Record> = stored
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r.name = name.clone();
                r
            })
            .collect();
        Ok(Some(records::answer(&synthesized, at, res)))
    }

    /// The answer of the first wildcard rule matching the source of synthesis `source`,
    /// with the query name as owner.
    async fn wildcard_rule(
        &self,
        at: At<'_>,
        source: &Name,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let relative = super::super::relative_labels(source, &at.zone.apex);
        for rule in at.zone.rules.iter().filter(|r| r.pattern.is_wildcard()) {
            let Some(caps) = rule.pattern.matches(&relative) else { continue };
            if let Some(step) = self.apply_rule(at, rule, &caps, res).await? {
                res.note(|| format!("synthesized from the wildcard rule {} at {source}", rule.pattern));
                res.tag(Tag::Name(at.name.to_ascii()));
                return Ok(Some(step));
            }
        }
        Ok(None)
    }

    /// Whether `name` (below the apex of `zone`) exists: static records at or below it,
    /// a custom domain, or a name the rules make from an existing instance.
    async fn name_exists(&self, zone: &Zone, name: &Name) -> Result<bool, StoreError> {
        if let Some(known) = self.known_read().exists(zone.id, name) {
            return Ok(known);
        }
        if zone.records_at(name).is_some() || self.may_be_custom_domain(&name.to_ascii()) {
            return Ok(true);
        }
        let relative = super::super::relative_labels(name, &zone.apex);
        if self.is_empty_non_terminal(zone, &relative, name).await? {
            return Ok(true);
        }
        for rule in zone.rules.iter().filter(|r| r.kind != crate::model::RuleKind::Tombstone) {
            let Some(caps) = rule.pattern.matches(&relative) else { continue };
            if self.rule_instance(&caps).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
