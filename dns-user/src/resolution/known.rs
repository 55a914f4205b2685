//! Which names exist, kept in memory: every name a static record, a rule applied to an
//! instance, a custom domain or an ACME challenge makes, with their ancestors (empty
//! non-terminals), by the hash the XDP program computes (`dns_common::negative`). The
//! fast path answers NXDOMAIN for every other name of an enumerable zone, and the
//! resolver answers them without asking the database: a random-subdomain flood never
//! reaches it.
//!
//! Names are reference-counted by source (two instances make the same `apps` empty
//! non-terminal): a source adds its contributions when it appears and removes the same
//! ones when it goes. The catalog's own contributions are replaced on every load; the
//! instances' are recomputed from the database when what shapes them (zones, rules,
//! service names) changes. Every change is queued for the fast path, which publishes it
//! before the answers depending on it are re-resolved.

use std::{
    collections::{HashMap, HashSet},
    hash::{Hash as _, Hasher as _},
};

use dns_common::negative::{KnownName, known_flags, name_hash};
use hickory_proto::rr::Name;

use super::{catalog::Catalog, sources::existence::instance_names};
use crate::protocol::{name_to_wire, parse_absolute};

/// What one source says about one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contribution {
    hash: u64,
    zone: u32,
    wire_len: u16,
    kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Exists,
    /// A delegation point.
    Cut,
    /// The parent of a `*` name.
    Wildcard,
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    exists: u32,
    cuts: u32,
    wildcards: u32,
    zone: u32,
    wire_len: u16,
}

impl Counts {
    fn published(&self) -> Option<KnownName> {
        (self.exists > 0).then_some(KnownName {
            zone: self.zone,
            flags: if self.cuts > 0 { known_flags::CUT } else { 0 }
                | if self.wildcards > 0 { known_flags::WILDCARD } else { 0 },
            wire_len: self.wire_len,
        })
    }
}

/// The existing names, and what changed since the fast path last took the changes.
pub struct KnownNames {
    seed: u64,
    entries: HashMap<u64, Counts>,
    /// The catalog's contributions, as last added.
    static_part: Vec<Contribution>,
    /// What shaped the instances' contributions (see [`shape`]).
    shape: String,
    /// Zones whose every name is known.
    enumerable: HashSet<i64>,
    /// Built from the database at least once (until then nothing is claimed absent).
    ready: bool,
    /// What each source's contributions were made from, so a change applied twice (a
    /// change log re-read after a reconnect) or after a rebuild that already saw it
    /// changes nothing: instance id -> fingerprint of its owner and name; custom
    /// domains' and challenges' name hashes.
    instances: HashMap<i64, u64>,
    names: HashSet<u64>,
    pending: HashMap<u64, Option<KnownName>>,
}

/// A source of names other than the catalog, as the database describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Instance {
        id: i64,
        owner: Option<String>,
        name: Option<String>,
    },
    /// A custom domain's hostname, or `_acme-challenge.NAME`.
    Name(String),
}

impl KnownNames {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            entries: HashMap::new(),
            static_part: Vec::new(),
            shape: String::new(),
            enumerable: HashSet::new(),
            ready: false,
            instances: HashMap::new(),
            names: HashSet::new(),
            pending: HashMap::new(),
        }
    }

    /// Marks the names untrusted until the next rebuild (what shapes them changed).
    pub fn invalidate(&mut self) {
        self.ready = false;
    }

    /// Queues every name again (the fast path lost some).
    pub fn republish_all(&mut self) {
        for (hash, counts) in &self.entries {
            self.pending.insert(*hash, counts.published());
        }
    }

    /// Adds a source that now exists; false if a different version of it is held (an
    /// update whose old half was never seen: the names need a rebuild).
    pub fn set(&mut self, catalog: &Catalog, services: &[String], source: &Source) -> bool {
        let mut out = Vec::new();
        match source {
            Source::Instance { id, owner, name } => {
                let print = fingerprint(owner.as_deref(), name.as_deref());
                match self.instances.get(id) {
                    Some(held) if *held == print => return true,
                    Some(_) => return false,
                    None => {}
                }
                instance_contributions(catalog, services, self.seed, *id, owner, name, &mut out);
                self.instances.insert(*id, print);
            }
            Source::Name(text) => {
                let key = text_key(text);
                if !self.names.insert(key) {
                    return true;
                }
                text_contributions(catalog, self.seed, text, &mut out);
            }
        }
        self.add(&out);
        true
    }

    /// Removes a source that no longer exists (as it was), if it is held as it was.
    pub fn unset(&mut self, catalog: &Catalog, services: &[String], source: &Source) {
        let mut out = Vec::new();
        match source {
            Source::Instance { id, owner, name } => {
                if self.instances.get(id) != Some(&fingerprint(owner.as_deref(), name.as_deref())) {
                    return;
                }
                self.instances.remove(id);
                instance_contributions(catalog, services, self.seed, *id, owner, name, &mut out);
            }
            Source::Name(text) => {
                if !self.names.remove(&text_key(text)) {
                    return;
                }
                text_contributions(catalog, self.seed, text, &mut out);
            }
        }
        self.remove(&out);
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether a name with this hash is known.
    pub fn contains_hash(&self, hash: u64) -> bool {
        self.entries.contains_key(&hash)
    }

    /// Goes on with the hashes of names published by an earlier daemon (only before the
    /// names are built: every hash changes with the seed).
    pub fn adopt_seed(&mut self, seed: u64) {
        if self.entries.is_empty() && !self.ready {
            self.seed = seed;
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether every name of zone `id` is known.
    pub fn is_enumerable(&self, zone: i64) -> bool {
        self.ready && self.enumerable.contains(&zone)
    }

    /// Whether `name` (lower-cased) of enumerable zone `zone` is known not to exist.
    pub fn is_absent(&self, zone: i64, name: &Name) -> bool {
        self.is_enumerable(zone) && !self.entries.contains_key(&self.hash(name))
    }

    /// Whether `name` is known to exist (`None`: its zone's names are not all known).
    pub fn exists(&self, zone: i64, name: &Name) -> Option<bool> {
        self.is_enumerable(zone).then(|| self.entries.contains_key(&self.hash(name)))
    }

    /// The hash the fast path knows `name` by.
    pub fn hash(&self, name: &Name) -> u64 {
        name_hash(self.seed, &name_to_wire(&name.to_lowercase()))
    }

    /// The changes to publish since the last call: (hash, what the name is now, or None
    /// if it no longer exists).
    pub fn take_pending(&mut self) -> Vec<(u64, Option<KnownName>)> {
        self.pending.drain().collect()
    }

    pub fn add(&mut self, contributions: &[Contribution]) {
        for c in contributions {
            let counts = self.entries.entry(c.hash).or_default();
            let before = counts.published();
            match c.kind {
                Kind::Exists => counts.exists += 1,
                Kind::Cut => counts.cuts += 1,
                Kind::Wildcard => counts.wildcards += 1,
            }
            counts.zone = c.zone;
            counts.wire_len = c.wire_len;
            let after = counts.published();
            if after != before {
                self.pending.insert(c.hash, after);
            }
        }
    }

    pub fn remove(&mut self, contributions: &[Contribution]) {
        for c in contributions {
            let Some(counts) = self.entries.get_mut(&c.hash) else { continue };
            let before = counts.published();
            let count = match c.kind {
                Kind::Exists => &mut counts.exists,
                Kind::Cut => &mut counts.cuts,
                Kind::Wildcard => &mut counts.wildcards,
            };
            *count = count.saturating_sub(1);
            let after = counts.published();
            if counts.exists == 0 && counts.cuts == 0 && counts.wildcards == 0 {
                self.entries.remove(&c.hash);
            }
            if after != before {
                self.pending.insert(c.hash, after);
            }
        }
    }

    /// Replaces the catalog's contributions with those of `catalog`; returns whether
    /// the instances' contributions must be recomputed (what shapes them changed).
    pub fn load_catalog(&mut self, catalog: &Catalog, enumerable: HashSet<i64>) -> bool {
        let fresh = static_contributions(catalog, self.seed);
        let old = std::mem::replace(&mut self.static_part, fresh.clone());
        self.remove(&old);
        self.add(&fresh);
        self.enumerable = enumerable;
        let shape = shape(catalog);
        let changed = shape != self.shape;
        self.shape = shape;
        changed
    }

    /// Replaces every source's contributions with those of `sources` (a rebuild from
    /// the database); the names become trusted. Only what differs is queued.
    pub fn replace_sources(&mut self, catalog: &Catalog, sources: &[Source]) {
        let services = catalog.service_names();
        let mut fresh = KnownNames::new(self.seed);
        fresh.add(&self.static_part);
        for source in sources {
            fresh.set(catalog, &services, source);
        }
        fresh.pending.clear();
        for (hash, counts) in &fresh.entries {
            let now = counts.published();
            if self.entries.get(hash).and_then(Counts::published) != now {
                self.pending.insert(*hash, now);
            }
        }
        for (hash, counts) in &self.entries {
            if counts.published().is_some() && !fresh.entries.contains_key(hash) {
                self.pending.insert(*hash, None);
            }
        }
        self.entries = fresh.entries;
        self.instances = fresh.instances;
        self.names = fresh.names;
        self.ready = true;
    }
}

fn fingerprint(owner: Option<&str>, name: Option<&str>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (owner, name).hash(&mut h);
    h.finish()
}

fn text_key(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.trim_end_matches('.').to_ascii_lowercase().hash(&mut h);
    h.finish()
}

fn instance_contributions(
    catalog: &Catalog,
    services: &[String],
    seed: u64,
    id: i64,
    owner: &Option<String>,
    name: &Option<String>,
    out: &mut Vec<Contribution>,
) {
    for text in instance_names(catalog, services, id, owner.as_deref(), name.as_deref()) {
        text_contributions(catalog, seed, &text, out);
    }
}

/// The contributions of `name` (lower-case, absolute) existing: it and its ancestors up
/// to its zone's apex, and a wildcard mark on its parent if it is a `*` name. Nothing if
/// it is in none of the catalog's zones.
pub fn name_contributions(catalog: &Catalog, seed: u64, name: &Name, out: &mut Vec<Contribution>) {
    let Some(zone) = catalog.find_zone(name) else { return };
    let zone_id = zone.id as u32;
    let mut at = name.to_lowercase();
    if at.is_wildcard() {
        let parent = at.base_name();
        out.push(contribution(seed, zone_id, &parent, Kind::Wildcard));
    }
    loop {
        out.push(contribution(seed, zone_id, &at, Kind::Exists));
        if at == zone.apex || at.is_root() {
            break;
        }
        at = at.base_name();
    }
}

/// The same for a name in text form (from the database); nothing if it does not parse.
pub fn text_contributions(catalog: &Catalog, seed: u64, name: &str, out: &mut Vec<Contribution>) {
    if let Ok(name) = parse_absolute(&name.to_ascii_lowercase()) {
        name_contributions(catalog, seed, &name, out);
    }
}

fn contribution(seed: u64, zone: u32, name: &Name, kind: Kind) -> Contribution {
    let wire = name_to_wire(name);
    Contribution { hash: name_hash(seed, &wire), zone, wire_len: wire.len() as u16, kind }
}

/// The catalog's contributions: apexes, static records' owners and their ancestors,
/// delegation points, wildcard parents.
fn static_contributions(catalog: &Catalog, seed: u64) -> Vec<Contribution> {
    let mut out = Vec::new();
    for zone in catalog.zones() {
        name_contributions(catalog, seed, &zone.apex, &mut out);
        for owner in zone.records.keys() {
            name_contributions(catalog, seed, owner, &mut out);
        }
        for cut in &zone.cuts {
            out.push(contribution(seed, zone.id as u32, cut, Kind::Cut));
        }
    }
    out
}

/// What the names instances make depend on: the zones, their rules, the service names.
fn shape(catalog: &Catalog) -> String {
    let mut zones: Vec<String> = catalog
        .zones()
        .map(|z| {
            let rules: Vec<String> = z.rules.iter().map(|r| format!("{}={}", r.pattern, r.kind)).collect();
            format!("{}#{}:{}", z.apex, z.id, rules.join(","))
        })
        .collect();
    zones.sort();
    format!("{}|{}", zones.join(";"), catalog.service_names().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(hash: u64, kind: Kind) -> Contribution {
        Contribution { hash, zone: 1, wire_len: 5, kind }
    }

    #[test]
    fn names_are_counted_by_source_and_changes_queued() {
        let mut known = KnownNames::new(0);
        known.add(&[c(1, Kind::Exists), c(2, Kind::Exists)]);
        known.add(&[c(1, Kind::Exists)]);
        let mut pending = known.take_pending();
        pending.sort_by_key(|(h, _)| *h);
        assert_eq!(pending.len(), 2);
        known.remove(&[c(1, Kind::Exists)]);
        assert!(known.take_pending().is_empty(), "still made by the other source");
        known.add(&[c(1, Kind::Wildcard)]);
        assert_eq!(known.take_pending()[0].1.unwrap().flags, known_flags::WILDCARD);
        known.remove(&[c(1, Kind::Exists), c(1, Kind::Wildcard)]);
        assert_eq!(known.take_pending(), vec![(1, None)]);
    }

    #[test]
    fn sources_are_idempotent() {
        let catalog = Catalog::default();
        let mut known = KnownNames::new(0);
        let instance = Source::Instance { id: 7, owner: Some("a".into()), name: Some("b".into()) };
        assert!(known.set(&catalog, &[], &instance));
        assert!(known.set(&catalog, &[], &instance), "the same again: nothing to do");
        let moved = Source::Instance { id: 7, owner: Some("a".into()), name: Some("c".into()) };
        assert!(!known.set(&catalog, &[], &moved), "another version without the old one removed");
        known.unset(&catalog, &[], &moved);
        assert!(known.instances.contains_key(&7), "not held as that: kept");
        known.unset(&catalog, &[], &instance);
        assert!(known.instances.is_empty());
    }
}
