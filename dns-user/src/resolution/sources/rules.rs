//! Name rules: `{service}-{id}.apps` CNAMEs to the cluster's service target,
//! `{name}.{owner}` and `{id}` answer the cluster's addresses (steered), tombstone rules
//! have their own file.

use std::net::IpAddr;

use dns_common::wire::rcode;
use hickory_proto::rr::{
    Name, RData, Record, RecordType,
    rdata::{A, AAAA, CNAME},
};

use super::super::{
    At, Catalog, Cluster, Resolution, Resolver, Rule, Step, Tag, read_ahead,
    steering::{self, Variation},
};
use crate::{
    model::{RuleKind, pattern::Captures},
    store::{Instance, Store, StoreError},
};

impl<S: Store> Resolver<S> {
    pub(in crate::resolution) fn cluster_of<'c>(
        &self,
        catalog: &'c Catalog,
        instance: &Instance,
        res: &mut Resolution,
    ) -> Option<&'c Cluster> {
        res.tag(Tag::Instance(instance.id));
        let cluster = catalog.clusters.get(&instance.cluster_id);
        match cluster {
            Some(c) => res.tag(Tag::Cluster(c.id)),
            None => {
                res.note(|| format!("instance {} is on unknown cluster {}", instance.id, instance.cluster_id))
            }
        }
        cluster
    }

    /// Applies a rule whose pattern matched; `None` if it yields nothing (the next rule
    /// is tried).
    pub(in crate::resolution) async fn apply_rule(
        &self,
        at: At<'_>,
        rule: &Rule,
        caps: &Captures,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let At { catalog, name, qtype, .. } = at;
        if rule.kind == RuleKind::Tombstone {
            return self.tombstone(at, rule, caps, res).await;
        }
        let Some(instance) = self.rule_instance(caps).await? else {
            res.note(|| format!("rule {} matched, but no such instance", rule.pattern));
            return Ok(None);
        };
        let Some(cluster) = self.cluster_of(catalog, &instance, res) else { return Ok(None) };
        res.note(|| {
            format!(
                "rule {} ({:?}): instance {}{} on cluster {}",
                rule.pattern,
                rule.kind,
                instance.id,
                describe_instance(&instance),
                cluster.name
            )
        });
        let ttl = instance.ttl.unwrap_or(rule.ttl);
        match rule.kind {
            RuleKind::Service => {
                let service = caps.service.as_deref().unwrap_or_default();
                let Some(target) = cluster.services.get(service) else {
                    res.note(|| format!("cluster {} has no service {service:?}", cluster.name));
                    return Ok(None);
                };
                let cname = Record::from_rdata(name.clone(), ttl, RData::CNAME(CNAME(target.clone())));
                res.sections.answers.push(cname);
                Ok(Some(if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
                    Step::Done
                } else {
                    Step::Chase(target.clone())
                }))
            }
            RuleKind::Host => {
                self.host_answer(at, cluster, ttl, res);
                Ok(Some(Step::Done))
            }
            RuleKind::Tombstone => unreachable!("handled above"),
        }
    }

    /// The instance a rule's captures name, if it exists and carries the name and owner
    /// the pattern captured.
    pub(in crate::resolution) async fn rule_instance(
        &self,
        caps: &Captures,
    ) -> Result<Option<Instance>, StoreError> {
        let instance = match (caps.id, caps.owner.as_deref(), caps.name.as_deref()) {
            (Some(id), _, _) => self.instance_by_id(id).await?,
            (None, Some(owner), Some(instance_name)) => match read_ahead::by_owner_name(owner, instance_name)
            {
                Some(instance) => Some(instance),
                None => self.store.instance_by_owner_name(owner, instance_name).await?,
            },
            _ => None,
        };
        Ok(instance.filter(|i| {
            caps.owner.is_none()
                || (i.owner.as_deref() == caps.owner.as_deref() && i.name.as_deref() == caps.name.as_deref())
        }))
    }

    /// The instance `id`: read ahead by a zone walk, else from the store.
    pub(in crate::resolution) async fn instance_by_id(
        &self,
        id: i64,
    ) -> Result<Option<Instance>, StoreError> {
        match read_ahead::by_id(id) {
            Some(instance) => Ok(Some(instance)),
            None => self.store.instance_by_id(id).await,
        }
    }

    /// The cluster's addresses of the query's family at `name`.
    pub(in crate::resolution) fn host_answer(
        &self,
        at: At<'_>,
        cluster: &Cluster,
        ttl: u32,
        res: &mut Resolution,
    ) {
        let At { zone, name, qtype, .. } = at;
        let wanted = |ip: &IpAddr| match qtype {
            RecordType::A => ip.is_ipv4(),
            RecordType::AAAA => ip.is_ipv6(),
            RecordType::ANY => true,
            _ => false,
        };
        let choice =
            steering::choose(&cluster.addresses, &cluster.steering, &self.health, wanted, res.selection);
        res.notes(choice.notes);
        if let Some(variation) = choice.variation
            && res.variation.is_none()
        {
            if matches!(variation, Variation::Directional(_)) {
                res.tag(Tag::Territories);
            }
            res.variation = Some(variation);
        }
        let records = address_records(name, ttl, &choice.addresses, qtype);
        if records.is_empty() {
            res.note(|| format!("no {qtype} records for cluster {}", cluster.name));
            res.negative(zone, name, rcode::NOERROR);
            return;
        }
        let first = res.sections.answers.len();
        if cluster.steering.rotate && records.len() > 1 {
            res.rotate = Some(first..first + records.len());
        }
        res.sections.answers.extend(records);
    }
}

fn describe_instance(i: &Instance) -> String {
    match (&i.name, &i.owner) {
        (Some(n), Some(o)) => format!(" ({n}.{o})"),
        _ => String::new(),
    }
}

/// The cluster addresses answering `qtype` at `name`.
fn address_records(name: &Name, ttl: u32, addresses: &[IpAddr], qtype: RecordType) -> Vec<Record> {
    addresses
        .iter()
        .filter_map(|ip| match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .map(|rdata| Record::from_rdata(name.clone(), ttl, rdata))
        .collect()
}
