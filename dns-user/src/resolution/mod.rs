//! The resolution core: a question in, an authoritative answer out. No sockets, no
//! BPF, no SQL: zone data comes from the in-memory [`Catalog`], instances, custom
//! domains and challenges from a [`Store`]. Every front end (UDP, TCP, `instadns
//! query`) and the fast path's map entries are built from what this module answers, so
//! they cannot disagree.
//!
//! Order at a name: static records, then ACME challenge answers (`_acme-challenge.`),
//! then custom domains, then the zone's name rules; a name with none of these is an
//! empty non-terminal (NODATA) if names exist below it, or does not exist (NXDOMAIN).
//! Each answer source has its own file under [`sources`].
//!
//! May import: `store` (the [`Store`] trait and its rows), `model`, `protocol`,
//! `dns_common`. Never the engine, the fast path or anything above them.

pub mod catalog;
pub mod health;
pub mod keys;
pub mod known;
pub mod read_ahead;
mod sources;
pub mod steering;
pub mod territory;
pub mod transfer;

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
};

use dns_common::wire::rcode;
use hickory_proto::rr::{Name, RecordType};
use tokio::sync::watch;

pub use catalog::{Catalog, Cluster, Rule, Zone};
use health::{HealthState, Plans};
use known::KnownNames;
use steering::Selection;

use crate::{
    protocol::{Sections, label_count, parse_absolute},
    store::{Store, StoreError},
};

/// Longest CNAME chain followed inside our zones (RFC 1034 section 3.6.2 asks servers
/// to stop loops; 8 is what common servers use).
pub const MAX_CNAME_CHAIN: usize = 8;

/// TTL of host answers for custom domains of instances without their own TTL.
pub const DOMAIN_TTL: u32 = 60;

/// What an answer depends on, so that a change in the database finds exactly the
/// answers (and map entries) it invalidates.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// The zone's static data: SOA, NS, records, rules.
    Zone(i64),
    /// The zone's SOA serial: the answers to SOA queries at its apex (negative answers
    /// carry the SOA too, but only for its TTL: they keep the serial they were made
    /// with until they expire, at most the negative TTL).
    Soa(i64),
    Instance(i64),
    Cluster(i64),
    /// Whether names exist at or below this name (lower-case, absolute): negative
    /// answers and empty non-terminals, custom domains, challenge names.
    Name(String),
    /// The territories' names and prefixes: directional answers.
    Territories,
    /// An answer adopted from an earlier daemon's pinned maps and not re-resolved yet:
    /// what it depends on is unknown, so every change replaces (or removes) it.
    Unresolved,
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
    pub variation: Option<steering::Variation>,
    pub tags: Vec<Tag>,
    /// Human-readable steps: which zone, rule, instance and cluster produced it (only
    /// when the resolution was asked to explain itself: [`Resolver::explain`]).
    pub trace: Vec<String>,
    /// Whether to note the steps in `trace` (formatting them costs on every query).
    explain: bool,
    /// The closest encloser, when the question's answer is synthesized from its
    /// wildcard (RFC 4592): every name below it that does not exist gets the same.
    pub synthesized_below: Option<Name>,
}

impl Resolution {
    fn new(selection: Selection, explain: bool) -> Self {
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
            explain,
            synthesized_below: None,
        }
    }

    /// Notes a step of the resolution, if it explains itself.
    fn note(&mut self, step: impl FnOnce() -> String) {
        if self.explain {
            self.trace.push(step());
        }
    }

    fn notes(&mut self, steps: Vec<String>) {
        if self.explain {
            self.trace.extend(steps);
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
        if rcode == rcode::NXDOMAIN {
            // The fast path's NXDOMAIN for the zone follows the serial at once: so does
            // this one, so both paths send the same bytes.
            self.tag(Tag::Soa(zone.id));
        }
    }
}

/// Where resolution stands: the name being answered, its zone, the query type.
#[derive(Clone, Copy)]
struct At<'a> {
    catalog: &'a Catalog,
    zone: &'a Zone,
    name: &'a Name,
    qtype: RecordType,
    /// The name is a CNAME target, not the question.
    chasing: bool,
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
    /// What the health checker probes, published on every catalog load.
    plans: watch::Sender<Arc<Plans>>,
    /// Which names exist: for negative answers without the database, here and in XDP.
    known: RwLock<KnownNames>,
}

/// Instances read per query when the known names are rebuilt.
const REBUILD_PAGE: i64 = 10_000;

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
            plans: watch::Sender::new(Arc::new(Plans::new())),
            known: RwLock::new(KnownNames::new(rand::random())),
        }
    }

    /// The health checker's plans, current from every catalog load on.
    pub fn probe_plans(&self) -> watch::Receiver<Arc<Plans>> {
        self.plans.subscribe()
    }

    pub fn health(&self) -> &Arc<HealthState> {
        &self.health
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Re-reads the small tables into a new catalog, and the custom domains.
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.load(true).await
    }

    /// Takes the new serials of zone rows the change feed reported; returns the zones
    /// whose other fields changed too (the catalog must be reloaded for them).
    pub fn take_serials(&self, rows: &[crate::store::ZoneRow]) -> Vec<i64> {
        let Some(catalog) = self.catalog() else { return rows.iter().map(|r| r.id).collect() };
        rows.iter()
            .filter(|row| !catalog.zone_by_id(row.id).is_some_and(|z| z.take_serial(row)))
            .map(|r| r.id)
            .collect()
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
                    .filter(|h| parse_absolute(h).is_ok_and(|n| catalog.find_zone(&n).is_some()))
                    .collect(),
            )
        } else {
            None
        };
        let plans = health::plans(&catalog);
        let enumerable: HashSet<i64> = catalog
            .zones()
            .filter(|z| self.store.instances_enumerable() || z.rules.is_empty())
            .map(|z| z.id)
            .collect();
        {
            let mut known = self.known_names();
            if known.load_catalog(&catalog, enumerable) {
                // New rules or services: the instances' names must be made again
                // ([`Resolver::refresh_known`]); until then none is claimed absent.
                known.invalidate();
            }
        }
        // Both swapped after both were read: never a new zone without its domains.
        *self.catalog.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(catalog));
        if let Some(domains) = domains {
            *self.domains.write().unwrap_or_else(|p| p.into_inner()) = domains;
        }
        self.plans.send_if_modified(|current| {
            let changed = **current != plans;
            if changed {
                *current = Arc::new(plans);
            }
            changed
        });
        Ok(())
    }

    /// Follows a change of custom domain `hostname` (added, moved or removed). While the
    /// database cannot say, the name is kept, so lookups still ask it.
    pub async fn domain_changed(&self, hostname: &str) {
        let hostname = hostname.to_ascii_lowercase();
        let in_zone = self
            .catalog()
            .is_some_and(|c| parse_absolute(&hostname).is_ok_and(|n| c.find_zone(&n).is_some()));
        let exists = match self.store.domain_instance(&hostname).await {
            Ok(instance) => instance.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, %hostname, "custom domain change: lookup failed, keeping the name");
                true
            }
        };
        let present = exists && in_zone;
        self.known_source_changed(&known::Source::Name(hostname.clone()), present);
        let mut domains = self.domains.write().unwrap_or_else(|p| p.into_inner());
        if present {
            domains.insert(hostname);
        } else {
            domains.remove(&hostname);
        }
    }

    /// Follows a change of the challenges at `_acme-challenge.NAME`. While the database
    /// cannot say, the name is kept.
    pub async fn acme_changed(&self, name: &str) {
        let present = match self.store.acme(name).await {
            Ok(rows) => !rows.is_empty(),
            Err(e) => {
                tracing::warn!(error = %e, name, "challenge change: lookup failed, keeping the name");
                true
            }
        };
        let label = crate::model::acme::ACME_LABEL;
        self.known_source_changed(&known::Source::Name(format!("{label}.{name}")), present);
    }

    /// The known names (see [`known`]).
    pub fn known_names(&self) -> std::sync::RwLockWriteGuard<'_, KnownNames> {
        self.known.write().unwrap_or_else(|p| p.into_inner())
    }

    fn known_read(&self) -> std::sync::RwLockReadGuard<'_, KnownNames> {
        self.known.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Rebuilds the known names from the database if they are not trusted (at start,
    /// after rules or services changed): every instance, custom domain and challenge.
    pub async fn refresh_known(&self) -> Result<(), StoreError> {
        if self.known_read().is_ready() {
            return Ok(());
        }
        let Some(catalog) = self.catalog() else { return Ok(()) };
        let started = std::time::Instant::now();
        let mut sources = Vec::new();
        let mut after = i64::MIN;
        loop {
            let page = self.store.instances_after(after, REBUILD_PAGE).await?;
            let Some(last) = page.last().map(|i| i.id) else { break };
            after = last;
            let full = page.len() as i64 == REBUILD_PAGE;
            sources.extend(page.into_iter().map(|i| known::Source::Instance {
                id: i.id,
                owner: i.owner,
                name: i.name,
            }));
            if !full {
                break;
            }
        }
        let domains: Vec<String> =
            self.domains.read().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
        sources.extend(domains.into_iter().map(known::Source::Name));
        for name in self.store.acme_names().await? {
            sources.push(known::Source::Name(format!("{}.{name}", crate::model::acme::ACME_LABEL)));
        }
        let mut known = self.known_names();
        known.replace_sources(&catalog, &sources);
        tracing::info!(names = known.len(), sources = sources.len(), took = ?started.elapsed(), "known names rebuilt");
        Ok(())
    }

    /// Follows a source of names appearing (`present`) or going, as the change log
    /// says; a version that does not match what is held marks the names for a rebuild.
    pub fn known_source_changed(&self, source: &known::Source, present: bool) {
        let Some(catalog) = self.catalog() else { return };
        let services = catalog.service_names();
        let mut known = self.known_names();
        if present {
            if !known.set(&catalog, &services, source) {
                tracing::debug!(?source, "known names out of step with the change log; rebuilding");
                known.invalidate();
            }
        } else {
            known.unset(&catalog, &services, source);
        }
    }

    /// The zone whose database lookups answering `name` would spend: None when the
    /// answer needs no lookup of a name that may not exist (static records, or a zone
    /// whose every name is known: unknown names need none, known ones are real).
    pub fn database_zone(&self, name: &Name) -> Option<i64> {
        let catalog = self.catalog()?;
        let zone = catalog.find_zone(name)?;
        (zone.records_at(name).is_none() && !self.known_read().is_enumerable(zone.id)).then_some(zone.id)
    }

    /// Whether the fast path answers a name that does not exist in `name`'s zone itself.
    pub fn negatives_cover(&self, name: &Name) -> bool {
        self.covering_zone(name).is_some()
    }

    /// `name`'s zone, if the fast path answers its names that do not exist itself.
    pub fn covering_zone(&self, name: &Name) -> Option<i64> {
        let zone = self.catalog()?.find_zone(name)?.id;
        self.known_read().is_enumerable(zone).then_some(zone)
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

    /// The same, with every step noted in [`Resolution::trace`] (`instadns query`).
    pub async fn explain(&self, qname: &Name, qtype: RecordType) -> Result<Resolution, StoreError> {
        self.resolve_with(qname, qtype, Selection::Default, true).await
    }

    /// Answers with the `selection` variant of a steered answer (a territory's, a
    /// weighted pick's); [`Resolution::variation`] says which variants exist.
    pub async fn resolve_selected(
        &self,
        qname: &Name,
        qtype: RecordType,
        selection: Selection,
    ) -> Result<Resolution, StoreError> {
        self.resolve_with(qname, qtype, selection, false).await
    }

    async fn resolve_with(
        &self,
        qname: &Name,
        qtype: RecordType,
        selection: Selection,
        explain: bool,
    ) -> Result<Resolution, StoreError> {
        let catalog = self.catalog().ok_or_else(|| StoreError::Unavailable("zones not loaded yet".into()))?;
        let mut res = Resolution::new(selection, explain);
        let mut name = qname.clone();
        for depth in 0..=MAX_CNAME_CHAIN {
            let Some(zone) = catalog.find_zone(&name) else {
                if depth == 0 {
                    // Not ours: we are never an open resolver.
                    res.rcode = rcode::REFUSED;
                    res.authoritative = false;
                    res.note(|| format!("{name} is in none of our zones"));
                    return Ok(res);
                }
                res.note(|| format!("CNAME target {name} is outside our zones: not followed"));
                break;
            };
            res.tag(Tag::Zone(zone.id));
            res.note(|| format!("{name}: zone {}", zone.apex));
            let at = At { catalog: &catalog, zone, name: &name, qtype, chasing: depth > 0 };
            match self.step(at, &mut res).await? {
                Step::Done => break,
                Step::Chase(target) => {
                    if depth == MAX_CNAME_CHAIN {
                        res.note(|| format!("CNAME chain longer than {MAX_CNAME_CHAIN}: stopped"));
                    }
                    name = target;
                }
            }
        }
        sources::additional::add(&catalog, &mut res);
        res.cache_ttl = if matches!(res.rcode, rcode::NOERROR | rcode::NXDOMAIN) {
            res.sections.answers.iter().chain(&res.sections.authority).map(|r| r.ttl).min()
        } else {
            None
        };
        Ok(res)
    }

    /// Answers at one name of a zone; appends to `res`.
    async fn step(&self, at: At<'_>, res: &mut Resolution) -> Result<Step, StoreError> {
        let At { zone, name, .. } = at;
        if let Some(cut) = zone.cut_above(name) {
            if at.chasing {
                // The child's data: a resolver follows the CNAME there itself.
                res.note(|| format!("CNAME target {name} is below the delegation {cut}: not followed"));
                return Ok(Step::Done);
            }
            return Ok(sources::delegation::answer(at, &cut, res));
        }
        if let Some(records) = zone.records_at(name) {
            res.note(|| "static records".into());
            return Ok(sources::records::answer(records, at, res));
        }
        // A name known not to exist needs no database lookup (a random-subdomain flood).
        let absent = self.known_read().is_absent(zone.id, name);
        if absent {
            res.note(|| "not among the names that exist".into());
        } else {
            if let Some(step) = self.acme(at, res).await? {
                return Ok(step);
            }
            if let Some(step) = self.custom_domain(at, res).await? {
                return Ok(step);
            }
        }
        let relative = relative_labels(name, &zone.apex);
        for rule in zone.rules.iter().filter(|_| !absent) {
            let Some(caps) = rule.pattern.matches(&relative) else { continue };
            if let Some(step) = self.apply_rule(at, rule, &caps, res).await? {
                return Ok(step);
            }
        }
        // Nothing at this name: an empty non-terminal (NODATA), a wildcard's, or nothing
        // (NXDOMAIN).
        if !absent && self.is_empty_non_terminal(zone, &relative, name).await? {
            res.note(|| "empty non-terminal".into());
            res.negative(zone, name, rcode::NOERROR);
        } else if let Some(step) = self.wildcard(at, res).await? {
            return Ok(step);
        } else {
            res.note(|| "no such name".into());
            res.negative(zone, name, rcode::NXDOMAIN);
        }
        Ok(Step::Done)
    }
}

/// The labels of `name` below `apex`, leftmost first.
fn relative_labels<'a>(name: &'a Name, apex: &Name) -> Vec<&'a [u8]> {
    let below = label_count(name).saturating_sub(label_count(apex));
    name.iter().take(below).collect()
}
