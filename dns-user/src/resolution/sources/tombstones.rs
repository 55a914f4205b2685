//! Tombstone rules: `_moved.{id}` answers a TXT record of the instance's last move.

use dns_common::wire::rcode;
use hickory_proto::rr::{RData, Record, RecordType, rdata::TXT};

use super::super::{At, Resolution, Resolver, Rule, Step, Tag};
use crate::{
    model::{pattern::Captures, time::rfc3339},
    store::{Store, StoreError},
};

impl<S: Store> Resolver<S> {
    /// A tombstone rule: TXT describing the instance's last move.
    pub(in crate::resolution) async fn tombstone(
        &self,
        at: At<'_>,
        rule: &Rule,
        caps: &Captures,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let At { zone, name, qtype, .. } = at;
        let Some(id) = caps.id else { return Ok(None) };
        res.tag(Tag::Instance(id));
        let Some(t) = self.store.last_tombstone(id).await? else {
            res.note(|| format!("rule {}: instance {id} never moved", rule.pattern));
            return Ok(None);
        };
        res.tag(Tag::Name(name.to_ascii()));
        res.note(|| format!("tombstone of instance {id}: {} -> {}", t.from_cluster, t.to_cluster));
        if !matches!(qtype, RecordType::TXT | RecordType::ANY) {
            res.negative(zone, name, rcode::NOERROR);
            return Ok(Some(Step::Done));
        }
        let text = format!("from={} to={} moved_at={}", t.from_cluster, t.to_cluster, rfc3339(t.moved_at));
        res.sections.answers.push(Record::from_rdata(
            name.clone(),
            rule.ttl,
            RData::TXT(TXT::new(vec![text])),
        ));
        Ok(Some(Step::Done))
    }
}
