//! The resolution core: a question in, an authoritative answer out. No sockets, no
//! BPF, no SQL: zone data comes from the in-memory [`Catalog`], instances from a
//! [`Store`]. Every front end (UDP, TCP, `instadns query`) and the fast path's map
//! entries are built from what this module answers, so they cannot disagree.

pub mod catalog;
pub mod rules;

use std::{
    net::IpAddr,
    sync::{Arc, RwLock},
};

use hickory_proto::rr::{
    Name, RData, Record, RecordType,
    rdata::{A, AAAA, CNAME},
};

pub use catalog::{Catalog, Cluster, Rule, RuleKind, Zone};

use crate::{
    answer::Sections,
    store::{Instance, Store, StoreError},
    wire::rcode,
};

/// Longest CNAME chain followed inside our zones (RFC 1034 section 3.6.2 asks servers
/// to stop loops; 8 is what common servers use).
pub const MAX_CNAME_CHAIN: usize = 8;

/// What an answer depends on, so a change in the database can find the answers
/// (and map entries) it invalidates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    Zone(i64),
    Instance(i64),
    Cluster(i64),
    /// The answer says a name does not exist or has no data of the type: any new
    /// instance may change it.
    Negative,
}

/// An authoritative answer with the facts behind it.
#[derive(Clone, Debug)]
pub struct Resolution {
    pub rcode: u16,
    pub authoritative: bool,
    pub sections: Sections,
    /// How long the answer may be served from a cache (the smallest TTL in it), or
    /// None if it must not be cached.
    pub cache_ttl: Option<u32>,
    /// Answer records whose order is rotated per response (round robin).
    pub rotate: Option<std::ops::Range<usize>>,
    pub tags: Vec<Tag>,
    /// Human-readable steps: which zone, rule, instance and cluster produced it.
    pub trace: Vec<String>,
}

impl Resolution {
    fn new() -> Self {
        Self {
            rcode: rcode::NOERROR,
            authoritative: true,
            sections: Sections::default(),
            cache_ttl: None,
            rotate: None,
            tags: Vec::new(),
            trace: Vec::new(),
        }
    }

    fn tag(&mut self, tag: Tag) {
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
    }

    fn negative(&mut self, zone: &Zone, rcode: u16) {
        self.rcode = rcode;
        self.sections.authority.push(zone.negative_soa());
        self.tag(Tag::Negative);
    }
}

/// What one step of resolution found at a name.
enum Step {
    Done,
    /// A CNAME to follow.
    Chase(Name),
}

pub struct Resolver<S> {
    store: S,
    catalog: RwLock<Arc<Catalog>>,
}

impl<S: Store> Resolver<S> {
    /// Loads the catalog from the store.
    pub async fn new(store: S) -> Result<Self, StoreError> {
        let resolver = Self { store, catalog: RwLock::new(Arc::new(Catalog::default())) };
        resolver.reload().await?;
        Ok(resolver)
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Re-reads the small tables into a new catalog.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let (catalog, warnings) = Catalog::build(self.store.catalog_rows().await?);
        for w in warnings {
            tracing::warn!("{w}");
        }
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(catalog);
        Ok(())
    }

    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Answers `qname` (lower-cased) / `qtype`, class IN.
    pub async fn resolve(&self, qname: &Name, qtype: RecordType) -> Result<Resolution, StoreError> {
        let catalog = self.catalog();
        let mut res = Resolution::new();
        let mut name = qname.clone();
        for depth in 0..=MAX_CNAME_CHAIN {
            let Some(zone) = catalog.find_zone(&name) else {
                if depth == 0 {
                    // Not ours: we are never an open resolver.
                    res.rcode = rcode::REFUSED;
                    res.authoritative = false;
                    res.trace.push(format!("{name} is in none of our zones"));
                    return Ok(res);
                }
                res.trace.push(format!("CNAME target {name} is outside our zones: not followed"));
                break;
            };
            res.tag(Tag::Zone(zone.id));
            res.trace.push(format!("{name}: zone {}", zone.apex));
            match self.step(&catalog, zone, &name, qtype, &mut res).await? {
                Step::Done => break,
                Step::Chase(target) => {
                    if depth == MAX_CNAME_CHAIN {
                        res.trace.push(format!("CNAME chain longer than {MAX_CNAME_CHAIN}: stopped"));
                    }
                    name = target;
                }
            }
        }
        res.cache_ttl = if matches!(res.rcode, rcode::NOERROR | rcode::NXDOMAIN) {
            res.sections.answers.iter().chain(&res.sections.authority).map(|r| r.ttl).min()
        } else {
            None
        };
        Ok(res)
    }

    /// Answers at one name of `zone`; appends to `res`.
    async fn step(
        &self,
        catalog: &Catalog,
        zone: &Zone,
        name: &Name,
        qtype: RecordType,
        res: &mut Resolution,
    ) -> Result<Step, StoreError> {
        if let Some(records) = zone.records_at(name) {
            res.trace.push("static records".into());
            return Ok(answer_from_rrsets(records, name, qtype, zone, res));
        }
        let relative = relative_labels(name, &zone.apex);
        for rule in &zone.rules {
            let Some(caps) = rule.pattern.matches(&relative) else {
                continue;
            };
            let instance = match (caps.id, caps.owner.as_deref(), caps.name.as_deref()) {
                (Some(id), _, _) => self.store.instance_by_id(id).await?,
                (None, Some(owner), Some(instance_name)) => {
                    self.store.instance_by_owner_name(owner, instance_name).await?
                }
                _ => None,
            };
            // The pattern matched, but the instance must also carry the captured
            // name and owner when the pattern names them.
            let Some(instance) =
                instance.filter(|i| caps.owner.is_none() || i.owner.as_deref() == caps.owner.as_deref())
            else {
                res.trace.push(format!("rule {} matched, but no such instance", rule.pattern));
                continue;
            };
            res.tag(Tag::Instance(instance.id));
            let Some(cluster) = catalog.clusters.get(&instance.cluster_id) else {
                res.trace
                    .push(format!("instance {} is on unknown cluster {}", instance.id, instance.cluster_id));
                continue;
            };
            res.tag(Tag::Cluster(cluster.id));
            res.trace.push(format!(
                "rule {} ({:?}): instance {}{} on cluster {}",
                rule.pattern,
                rule.kind,
                instance.id,
                describe_instance(&instance),
                cluster.name
            ));
            let ttl = instance.ttl.unwrap_or(rule.ttl);
            match rule.kind {
                RuleKind::Service => {
                    let service = caps.service.as_deref().unwrap_or_default();
                    let Some(target) = cluster.services.get(service) else {
                        res.trace.push(format!("cluster {} has no service {service:?}", cluster.name));
                        continue;
                    };
                    let cname = Record::from_rdata(name.clone(), ttl, RData::CNAME(CNAME(target.clone())));
                    res.sections.answers.push(cname);
                    return Ok(if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
                        Step::Done
                    } else {
                        Step::Chase(target.clone())
                    });
                }
                RuleKind::Host => {
                    let records = address_records(name, ttl, &cluster.addresses, qtype);
                    if records.is_empty() {
                        res.trace.push(format!("no {qtype} records for cluster {}", cluster.name));
                        res.negative(zone, rcode::NOERROR);
                    } else {
                        let first = res.sections.answers.len();
                        if cluster.rotate && records.len() > 1 {
                            res.rotate = Some(first..first + records.len());
                        }
                        res.sections.answers.extend(records);
                    }
                    return Ok(Step::Done);
                }
            }
        }
        // Nothing at this name: an empty non-terminal (NODATA) or nothing (NXDOMAIN).
        if self.is_empty_non_terminal(zone, &relative, name).await? {
            res.trace.push("empty non-terminal".into());
            res.negative(zone, rcode::NOERROR);
        } else {
            res.trace.push("no such name".into());
            res.negative(zone, rcode::NXDOMAIN);
        }
        Ok(Step::Done)
    }

    /// A name with nothing of its own exists if names exist below it (RFC 8020): static
    /// records below it, or instance names of a rule whose leading labels it lacks.
    async fn is_empty_non_terminal(
        &self,
        zone: &Zone,
        relative: &[&[u8]],
        name: &Name,
    ) -> Result<bool, StoreError> {
        if zone.has_records_below(name) {
            return Ok(true);
        }
        for rule in &zone.rules {
            let Some(caps) = rule.pattern.matches_ancestor(relative) else {
                continue;
            };
            let exists = match (caps.id, caps.owner.as_deref()) {
                (Some(id), _) => self.store.instance_by_id(id).await?.is_some(),
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
}

fn describe_instance(i: &Instance) -> String {
    match (&i.name, &i.owner) {
        (Some(n), Some(o)) => format!(" ({n}.{o})"),
        _ => String::new(),
    }
}

/// The labels of `name` below `apex`, leftmost first.
fn relative_labels<'a>(name: &'a Name, apex: &Name) -> Vec<&'a [u8]> {
    let below = name.num_labels().saturating_sub(apex.num_labels()) as usize;
    name.iter().take(below).collect()
}

/// Answers from static RRsets at `name`.
fn answer_from_rrsets(
    records: &[Record],
    name: &Name,
    qtype: RecordType,
    zone: &Zone,
    res: &mut Resolution,
) -> Step {
    let of_type = |t: RecordType| records.iter().filter(move |r| r.record_type() == t);
    if qtype == RecordType::ANY {
        // RFC 8482: answer ANY with one RRset rather than everything.
        let first = records.iter().map(Record::record_type).min_by_key(|t| u16::from(*t));
        if let Some(t) = first {
            res.sections.answers.extend(of_type(t).cloned());
        }
        return Step::Done;
    }
    let matching: Vec<Record> = of_type(qtype).cloned().collect();
    if !matching.is_empty() {
        res.sections.answers.extend(matching);
        return Step::Done;
    }
    if let Some(cname) = of_type(RecordType::CNAME).next() {
        res.sections.answers.push(cname.clone());
        if let RData::CNAME(CNAME(target)) = &cname.data {
            return Step::Chase(target.to_lowercase());
        }
    }
    res.trace.push(format!("no {qtype} records at {name}"));
    res.negative(zone, rcode::NOERROR);
    Step::Done
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
