//! The resolution core: a question in, an authoritative answer out. No sockets, no
//! BPF, no SQL: zone data comes from the in-memory [`Catalog`], instances, custom
//! domains and challenges from a [`Store`]. Every front end (UDP, TCP, `instadns
//! query`) and the fast path's map entries are built from what this module answers, so
//! they cannot disagree.
//!
//! Order at a name: static records, then ACME challenge answers (`_acme-challenge.`),
//! then custom domains, then the zone's name rules; a name with none of these is an
//! empty non-terminal (NODATA) if names exist below it, or does not exist (NXDOMAIN).

pub mod catalog;
pub mod rules;

use std::{
    collections::HashSet,
    net::IpAddr,
    sync::{Arc, RwLock},
};

use hickory_proto::rr::{
    Name, RData, Record, RecordType,
    rdata::{A, AAAA, CNAME, TXT},
};

pub use catalog::{Catalog, Cluster, Rule, RuleKind, Zone};
use rules::Captures;

use crate::{
    answer::Sections,
    steering::{self, Selection, Variation, health::HealthState},
    store::{Instance, Store, StoreError, rfc3339, unix_now},
    wire::rcode,
};

/// Longest CNAME chain followed inside our zones (RFC 1034 section 3.6.2 asks servers
/// to stop loops; 8 is what common servers use).
pub const MAX_CNAME_CHAIN: usize = 8;

/// The label under which DNS-01 challenges are answered (RFC 8555 section 8.4).
pub const ACME_LABEL: &str = "_acme-challenge";

/// TTL of host answers for custom domains of instances without their own TTL.
pub const DOMAIN_TTL: u32 = 60;

/// What an answer depends on, so that a change in the database finds exactly the
/// answers (and map entries) it invalidates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// The zone's static data: SOA, NS, records, rules.
    Zone(i64),
    Instance(i64),
    Cluster(i64),
    /// Whether names exist at or below this name (lower-case, absolute): negative
    /// answers and empty non-terminals, custom domains, challenge names.
    Name(String),
    /// The territories' names and prefixes: directional answers.
    Territories,
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
    /// The variant of a steered answer this resolution is.
    pub selection: Selection,
    /// How the answer varies (by territory, by weighted pick), if it does.
    pub variation: Option<Variation>,
    pub tags: Vec<Tag>,
    /// Human-readable steps: which zone, rule, instance and cluster produced it.
    pub trace: Vec<String>,
}

impl Resolution {
    fn new(selection: Selection) -> Self {
        Self {
            rcode: rcode::NOERROR,
            authoritative: true,
            sections: Sections::default(),
            cache_ttl: None,
            rotate: None,
            selection,
            variation: None,
            tags: Vec::new(),
            trace: Vec::new(),
        }
    }

    fn tag(&mut self, tag: Tag) {
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
    }

    /// NXDOMAIN or NODATA at `name`: the SOA in authority (RFC 2308).
    fn negative(&mut self, zone: &Zone, name: &Name, rcode: u16) {
        self.rcode = rcode;
        self.sections.authority.push(zone.negative_soa());
        self.tag(Tag::Name(name.to_ascii()));
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
    catalog: RwLock<Option<Arc<Catalog>>>,
    /// The custom domains inside our zones (lower-case, absolute). A name not here needs
    /// no database lookup for one, so a random-subdomain flood never reaches the
    /// database. Kept current by [`Resolver::reload`] and [`Resolver::domain_changed`].
    domains: RwLock<HashSet<String>>,
    /// Health of the failover queues' addresses, written by the health checker.
    health: Arc<HealthState>,
}

impl<S: Store> Resolver<S> {
    /// A resolver with the catalog loaded from the store.
    pub async fn new(store: S) -> Result<Self, StoreError> {
        let resolver = Self::unloaded(store);
        resolver.reload().await?;
        Ok(resolver)
    }

    /// A resolver whose catalog is not loaded yet (the database may be down): it
    /// answers SERVFAIL until [`Resolver::reload`] succeeds.
    pub fn unloaded(store: S) -> Self {
        Self {
            store,
            catalog: RwLock::new(None),
            domains: RwLock::new(HashSet::new()),
            health: Arc::new(HealthState::default()),
        }
    }

    pub fn health(&self) -> &Arc<HealthState> {
        &self.health
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn is_loaded(&self) -> bool {
        self.catalog.read().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// Re-reads the small tables into a new catalog, and the custom domains.
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.load(true).await
    }

    /// The same after a change of zones, records, rules or clusters that the change feed
    /// reported: the custom domains are read again only if the set of zones changed
    /// (which domains are inside our zones changes only with it; domain changes are
    /// followed one by one by [`Resolver::domain_changed`]), so a cluster's change does
    /// not read every domain again.
    pub async fn reload_after_change(&self) -> Result<(), StoreError> {
        self.load(false).await
    }

    async fn load(&self, read_domains: bool) -> Result<(), StoreError> {
        let (catalog, warnings) = Catalog::build(self.store.catalog_rows().await?);
        for w in warnings {
            tracing::warn!("{w}");
        }
        let read_domains = read_domains || self.catalog().is_none_or(|old| !old.same_zones(&catalog));
        let domains: Option<HashSet<String>> = if read_domains {
            let all = self.store.domain_names().await?;
            Some(
                all.into_iter()
                    .filter(|h| catalog::parse_name(h).is_ok_and(|n| catalog.find_zone(&n).is_some()))
                    .collect(),
            )
        } else {
            None
        };
        // Both swapped after both were read: never a new zone without its domains.
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(catalog));
        if let Some(domains) = domains {
            *self.domains.write().unwrap_or_else(|p| p.into_inner()) = domains;
        }
        Ok(())
    }

    /// Follows a change of custom domain `hostname` (added, moved or removed). While the
    /// database cannot say, the name is kept, so lookups still ask it.
    pub async fn domain_changed(&self, hostname: &str) {
        let hostname = hostname.to_ascii_lowercase();
        let in_zone = self
            .catalog()
            .is_some_and(|c| catalog::parse_name(&hostname).is_ok_and(|n| c.find_zone(&n).is_some()));
        let exists = match self.store.domain_instance(&hostname).await {
            Ok(instance) => instance.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, %hostname, "custom domain change: lookup failed, keeping the name");
                true
            }
        };
        let mut domains = self.domains.write().unwrap_or_else(|p| p.into_inner());
        if exists && in_zone {
            domains.insert(hostname);
        } else {
            domains.remove(&hostname);
        }
    }

    fn may_be_custom_domain(&self, hostname: &str) -> bool {
        self.domains.read().unwrap_or_else(|p| p.into_inner()).contains(hostname)
    }

    pub fn catalog(&self) -> Option<Arc<Catalog>> {
        self.catalog.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Answers `qname` (lower-cased) / `qtype`, class IN.
    pub async fn resolve(&self, qname: &Name, qtype: RecordType) -> Result<Resolution, StoreError> {
        self.resolve_selected(qname, qtype, Selection::Default).await
    }

    /// Answers with the `selection` variant of a steered answer (a territory's, a
    /// weighted pick's); [`Resolution::variation`] says which variants exist.
    pub async fn resolve_selected(
        &self,
        qname: &Name,
        qtype: RecordType,
        selection: Selection,
    ) -> Result<Resolution, StoreError> {
        let catalog = self.catalog().ok_or_else(|| StoreError::Unavailable("zones not loaded yet".into()))?;
        let mut res = Resolution::new(selection);
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
        if let Some(step) = self.acme(zone, name, qtype, res).await? {
            return Ok(step);
        }
        if let Some(step) = self.custom_domain(catalog, zone, name, qtype, res).await? {
            return Ok(step);
        }
        let relative = relative_labels(name, &zone.apex);
        for rule in &zone.rules {
            let Some(caps) = rule.pattern.matches(&relative) else { continue };
            if let Some(step) = self.apply_rule(catalog, zone, rule, &caps, name, qtype, res).await? {
                return Ok(step);
            }
        }
        // Nothing at this name: an empty non-terminal (NODATA) or nothing (NXDOMAIN).
        if self.is_empty_non_terminal(zone, &relative, name).await? {
            res.trace.push("empty non-terminal".into());
            res.negative(zone, name, rcode::NOERROR);
        } else {
            res.trace.push("no such name".into());
            res.negative(zone, name, rcode::NXDOMAIN);
        }
        Ok(Step::Done)
    }

    /// `_acme-challenge.<name>`: the challenge's TXT values (those not expired), or its
    /// CNAME into a validation zone.
    async fn acme(
        &self,
        zone: &Zone,
        name: &Name,
        qtype: RecordType,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let Some(first) = name.iter().next() else { return Ok(None) };
        if !first.eq_ignore_ascii_case(ACME_LABEL.as_bytes()) || name.num_labels() < 2 {
            return Ok(None);
        }
        let validated = name.base_name().to_ascii();
        let now = unix_now();
        let challenges: Vec<_> = self
            .store
            .acme(&validated)
            .await?
            .into_iter()
            .filter(|c| c.expires_at.is_none_or(|t| t > now))
            .collect();
        if challenges.is_empty() {
            return Ok(None);
        }
        res.tag(Tag::Name(name.to_ascii()));
        res.trace.push(format!("ACME challenge for {validated}"));
        if let Some(c) = challenges.iter().find(|c| c.kind == "cname") {
            let target = catalog::parse_name(&c.value).map_err(StoreError::Invalid)?;
            res.sections.answers.push(Record::from_rdata(
                name.clone(),
                c.ttl,
                RData::CNAME(CNAME(target.clone())),
            ));
            return Ok(Some(if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
                Step::Done
            } else {
                Step::Chase(target)
            }));
        }
        if !matches!(qtype, RecordType::TXT | RecordType::ANY) {
            res.negative(zone, name, rcode::NOERROR);
            return Ok(Some(Step::Done));
        }
        for c in challenges {
            // Never cached past the value's expiry.
            let ttl = c.expires_at.map_or(c.ttl, |t| c.ttl.min((t - now).clamp(1, u32::MAX.into()) as u32));
            res.sections.answers.push(Record::from_rdata(
                name.clone(),
                ttl,
                RData::TXT(TXT::new(vec![c.value])),
            ));
        }
        Ok(Some(Step::Done))
    }

    /// A custom domain of an instance (a hostname delegated to us) answers like the
    /// instance's host names.
    async fn custom_domain(
        &self,
        catalog: &Catalog,
        zone: &Zone,
        name: &Name,
        qtype: RecordType,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let hostname = name.to_ascii();
        if !self.may_be_custom_domain(&hostname) {
            return Ok(None);
        }
        let Some(id) = self.store.domain_instance(&hostname).await? else { return Ok(None) };
        let Some(instance) = self.store.instance_by_id(id).await? else { return Ok(None) };
        let Some(cluster) = self.cluster_of(catalog, &instance, res) else { return Ok(None) };
        res.tag(Tag::Name(name.to_ascii()));
        res.trace.push(format!("custom domain of instance {id}"));
        self.host_answer(zone, cluster, name, instance.ttl.unwrap_or(DOMAIN_TTL), qtype, res);
        Ok(Some(Step::Done))
    }

    fn cluster_of<'c>(
        &self,
        catalog: &'c Catalog,
        instance: &Instance,
        res: &mut Resolution,
    ) -> Option<&'c Cluster> {
        res.tag(Tag::Instance(instance.id));
        let cluster = catalog.clusters.get(&instance.cluster_id);
        match cluster {
            Some(c) => res.tag(Tag::Cluster(c.id)),
            None => res
                .trace
                .push(format!("instance {} is on unknown cluster {}", instance.id, instance.cluster_id)),
        }
        cluster
    }

    /// Applies a rule whose pattern matched; `None` if it yields nothing (the next rule
    /// is tried).
    #[allow(clippy::too_many_arguments)]
    async fn apply_rule(
        &self,
        catalog: &Catalog,
        zone: &Zone,
        rule: &Rule,
        caps: &Captures,
        name: &Name,
        qtype: RecordType,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        if rule.kind == RuleKind::Tombstone {
            return self.tombstone(zone, rule, caps, name, qtype, res).await;
        }
        let instance = match (caps.id, caps.owner.as_deref(), caps.name.as_deref()) {
            (Some(id), _, _) => self.store.instance_by_id(id).await?,
            (None, Some(owner), Some(instance_name)) => {
                self.store.instance_by_owner_name(owner, instance_name).await?
            }
            _ => None,
        };
        // The instance must also carry the name and owner the pattern captured.
        let Some(instance) = instance.filter(|i| {
            caps.owner.is_none()
                || (i.owner.as_deref() == caps.owner.as_deref() && i.name.as_deref() == caps.name.as_deref())
        }) else {
            res.trace.push(format!("rule {} matched, but no such instance", rule.pattern));
            return Ok(None);
        };
        let Some(cluster) = self.cluster_of(catalog, &instance, res) else { return Ok(None) };
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
                self.host_answer(zone, cluster, name, ttl, qtype, res);
                Ok(Some(Step::Done))
            }
            RuleKind::Tombstone => unreachable!("handled above"),
        }
    }

    /// The cluster's addresses of the query's family at `name`.
    fn host_answer(
        &self,
        zone: &Zone,
        cluster: &Cluster,
        name: &Name,
        ttl: u32,
        qtype: RecordType,
        res: &mut Resolution,
    ) {
        let wanted = |ip: &IpAddr| match qtype {
            RecordType::A => ip.is_ipv4(),
            RecordType::AAAA => ip.is_ipv6(),
            RecordType::ANY => true,
            _ => false,
        };
        let choice =
            steering::choose(&cluster.addresses, &cluster.steering, &self.health, wanted, res.selection);
        res.trace.extend(choice.notes);
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
            res.trace.push(format!("no {qtype} records for cluster {}", cluster.name));
            res.negative(zone, name, rcode::NOERROR);
            return;
        }
        let first = res.sections.answers.len();
        if cluster.steering.rotate && records.len() > 1 {
            res.rotate = Some(first..first + records.len());
        }
        res.sections.answers.extend(records);
    }

    /// A tombstone rule: TXT describing the instance's last move.
    async fn tombstone(
        &self,
        zone: &Zone,
        rule: &Rule,
        caps: &Captures,
        name: &Name,
        qtype: RecordType,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let Some(id) = caps.id else { return Ok(None) };
        res.tag(Tag::Instance(id));
        let Some(t) = self.store.last_tombstone(id).await? else {
            res.trace.push(format!("rule {}: instance {id} never moved", rule.pattern));
            return Ok(None);
        };
        res.tag(Tag::Name(name.to_ascii()));
        res.trace.push(format!("tombstone of instance {id}: {} -> {}", t.from_cluster, t.to_cluster));
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
            let Some(caps) = rule.pattern.matches_ancestor(relative) else { continue };
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

    /// The names (lower-case, absolute) an instance with these fields makes exist,
    /// empty non-terminals included: what a change of the instance can affect.
    pub fn names_of_instance(&self, id: i64, owner: Option<&str>, name: Option<&str>) -> Vec<String> {
        let Some(catalog) = self.catalog() else { return Vec::new() };
        let services = catalog.service_names();
        let mut out = Vec::new();
        for zone in catalog.zones() {
            let apex = zone.apex.to_ascii();
            for rule in &zone.rules {
                let uses_service = rule.pattern.uses(rules::Var::Service);
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
    res.negative(zone, name, rcode::NOERROR);
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
