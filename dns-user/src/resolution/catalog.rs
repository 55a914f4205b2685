//! The in-memory catalog: zones (found by longest suffix), their static records and
//! name rules, and the clusters. Built from the small tables; invalid rows are skipped
//! with a warning naming the row, never a crash.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
    str::FromStr as _,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use hickory_proto::rr::{
    Name, RData, Record, RecordType,
    rdata::{NS, SOA},
};

use super::{
    health::{Check, Probe},
    steering::{ClusterAddress, Steering},
    territory::Territories,
};
use crate::{
    model::{AddressOrder, CheckKind, Fallback, Pattern, Pick, RuleKind},
    protocol::{label_count, parse_absolute},
    resolution::keys::Keys,
    store::{CatalogRows, ZoneRow},
};

#[derive(Clone, Debug)]
pub struct Rule {
    pub id: i64,
    pub pattern: Pattern,
    pub kind: RuleKind,
    pub ttl: u32,
}

#[derive(Debug)]
pub struct Zone {
    pub id: i64,
    pub apex: Name,
    /// The SOA record with its own TTL; its serial is [`Zone::serial`]'s.
    soa: Record,
    /// The SOA serial: it changes with every change of the zone's data, so it is kept
    /// apart (a new serial needs no new catalog).
    serial: AtomicU32,
    /// TTL of negative answers: min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5).
    pub negative_ttl: u32,
    /// Static records by owner (lower-cased), apex SOA and NS included. Ordered
    /// canonically, so the names below a name follow it.
    pub records: BTreeMap<Name, Vec<Record>>,
    pub rules: Vec<Rule>,
    /// Delegations: names below the apex with NS records (RFC 1034 section 4.2.1).
    pub cuts: BTreeSet<Name>,
    /// Whether any static owner name or rule pattern is a wildcard (`*.` first label,
    /// RFC 4592).
    pub has_wildcards: bool,
}

impl Zone {
    /// The SOA record, with the current serial.
    pub fn soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(s) = &mut soa.data {
            s.serial = self.serial();
        }
        soa
    }

    pub fn serial(&self) -> u32 {
        self.serial.load(Ordering::Relaxed)
    }

    /// Takes a new serial of the zone's row, if every other SOA field is what the
    /// catalog holds (otherwise the catalog must be rebuilt); returns whether it did.
    pub fn take_serial(&self, row: &ZoneRow) -> bool {
        let RData::SOA(s) = &self.soa.data else { return false };
        let same = s.refresh == row.soa_refresh as i32
            && s.retry == row.soa_retry as i32
            && s.expire == row.soa_expire as i32
            && s.minimum == row.soa_minimum
            && self.soa.ttl == row.soa_ttl
            && parse_name(&row.soa_mname).is_ok_and(|m| m == s.mname)
            && parse_name(&row.soa_rname).is_ok_and(|r| r == s.rname);
        if same {
            self.serial.store(row.soa_serial, Ordering::Relaxed);
        }
        same
    }

    pub fn records_at(&self, name: &Name) -> Option<&[Record]> {
        self.records.get(name).map(Vec::as_slice)
    }

    /// The delegation at or above `name` (the highest one: what is below a cut is the
    /// child's), if `name` is below a zone cut.
    pub fn cut_above(&self, name: &Name) -> Option<Name> {
        if self.cuts.is_empty() {
            return None;
        }
        let apex_labels = label_count(&self.apex);
        (apex_labels + 1..=label_count(name)).map(|n| name.trim_to(n)).find(|n| self.cuts.contains(n))
    }

    /// Whether a static record exists strictly below `name` (making it an empty
    /// non-terminal if nothing is at `name` itself).
    pub fn has_records_below(&self, name: &Name) -> bool {
        self.records
            .range(name.clone()..)
            .find(|(owner, _)| *owner != name)
            .is_some_and(|(owner, _)| name.zone_of(owner))
    }

    /// The SOA record as it appears in negative answers.
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa();
        soa.ttl = self.negative_ttl;
        soa
    }
}

#[derive(Clone, Debug)]
pub struct Cluster {
    pub id: i64,
    pub name: String,
    /// Service name to the target of its CNAME.
    pub services: HashMap<String, Name>,
    /// In failover queue order, then address order.
    pub addresses: Vec<ClusterAddress>,
    pub steering: Steering,
}

#[derive(Debug, Default)]
pub struct Catalog {
    zones: HashMap<Name, Arc<Zone>>,
    pub clusters: HashMap<i64, Cluster>,
    pub territories: Territories,
    pub keys: Keys,
}

/// Parses an absolute domain name from the database, lower-cased.
fn parse_name(text: &str) -> Result<Name, String> {
    parse_absolute(text).map_err(|e| e.to_string())
}

impl Catalog {
    /// Builds the catalog; the returned warnings name each skipped row and why.
    pub fn build(rows: CatalogRows) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let mut zones: HashMap<i64, Zone> = HashMap::new();
        for z in &rows.zones {
            let built = (|| -> Result<Zone, String> {
                let apex = parse_name(&z.apex)?;
                let soa = SOA::new(
                    parse_name(&z.soa_mname)?,
                    parse_name(&z.soa_rname)?,
                    z.soa_serial,
                    z.soa_refresh as i32,
                    z.soa_retry as i32,
                    z.soa_expire as i32,
                    z.soa_minimum,
                );
                let soa = Record::from_rdata(apex.clone(), z.soa_ttl, RData::SOA(soa));
                let mut records = BTreeMap::new();
                records.insert(apex.clone(), vec![soa.clone()]);
                Ok(Zone {
                    id: z.id,
                    apex,
                    soa,
                    serial: AtomicU32::new(z.soa_serial),
                    negative_ttl: z.soa_ttl.min(z.soa_minimum),
                    records,
                    rules: Vec::new(),
                    cuts: BTreeSet::new(),
                    has_wildcards: false,
                })
            })();
            match built {
                Ok(zone) => {
                    zones.insert(z.id, zone);
                }
                Err(e) => warnings.push(format!("zone {} skipped: {e}", z.apex)),
            }
        }
        let ns_ttl: HashMap<i64, u32> = rows.zones.iter().map(|z| (z.id, z.ns_ttl)).collect();
        for ns in &rows.ns {
            let Some(zone) = zones.get_mut(&ns.zone_id) else {
                continue;
            };
            match parse_name(&ns.nsdname) {
                Ok(target) => {
                    let record =
                        Record::from_rdata(zone.apex.clone(), ns_ttl[&ns.zone_id], RData::NS(NS(target)));
                    zone.records.entry(zone.apex.clone()).or_default().push(record);
                }
                Err(e) => warnings.push(format!("NS {} of zone {} skipped: {e}", ns.nsdname, zone.apex)),
            }
        }
        for r in &rows.records {
            let Some(zone) = zones.get_mut(&r.zone_id) else {
                continue;
            };
            let record = (|| -> Result<Record, String> {
                let owner = parse_name(&r.name)?;
                if !zone.apex.zone_of(&owner) {
                    return Err(format!("{owner} is outside zone {}", zone.apex));
                }
                let rtype = RecordType::from_str(&r.rtype.to_ascii_uppercase())
                    .map_err(|e| format!("unknown type {:?}: {e}", r.rtype))?;
                if matches!(rtype, RecordType::SOA | RecordType::OPT) {
                    return Err(format!("{rtype} records come from the zone definition"));
                }
                let rdata = RData::try_from_str(rtype, &r.data)
                    .map_err(|e| format!("bad {rtype} data {:?}: {e}", r.data))?;
                Ok(Record::from_rdata(owner, r.ttl, rdata))
            })();
            match record {
                Ok(record) => zone.records.entry(record.name.clone()).or_default().push(record),
                Err(e) => warnings.push(format!("record {} ({} {}) skipped: {e}", r.id, r.name, r.rtype)),
            }
        }
        for zone in zones.values_mut() {
            zone.cuts = zone
                .records
                .iter()
                .filter(|(owner, rs)| {
                    **owner != zone.apex && rs.iter().any(|r| r.record_type() == RecordType::NS)
                })
                .map(|(owner, _)| owner.clone())
                .collect();
            zone.has_wildcards = zone.records.keys().any(|owner| owner.is_wildcard());
        }
        for rule in &rows.rules {
            let Some(zone) = zones.get_mut(&rule.zone_id) else {
                continue;
            };
            match Pattern::parse(&rule.pattern) {
                Ok(pattern) => {
                    zone.has_wildcards |= pattern.is_wildcard();
                    zone.rules.push(Rule { id: rule.id, pattern, kind: rule.kind, ttl: rule.ttl })
                }
                Err(e) => warnings.push(format!("rule {} skipped: {e}", rule.id)),
            }
        }

        let mut clusters: HashMap<i64, Cluster> = rows
            .clusters
            .iter()
            .map(|c| {
                let cluster = Cluster {
                    id: c.id,
                    name: c.name.clone(),
                    services: HashMap::new(),
                    addresses: Vec::new(),
                    steering: Steering {
                        rotate: c.order == AddressOrder::Rotate,
                        pick_one: c.pick == Pick::One,
                        fallback_last: c.fallback == Fallback::Last,
                        check: None,
                    },
                };
                (c.id, cluster)
            })
            .collect();
        for s in &rows.services {
            let Some(cluster) = clusters.get_mut(&s.cluster_id) else {
                continue;
            };
            match parse_name(&s.target) {
                Ok(target) => {
                    cluster.services.insert(s.service.to_ascii_lowercase(), target);
                }
                Err(e) => {
                    warnings.push(format!("service {} of cluster {} skipped: {e}", s.service, cluster.name))
                }
            }
        }
        let territory_prefixes: Vec<(String, String)> =
            rows.territory_prefixes.iter().map(|p| (p.territory.clone(), p.prefix.clone())).collect();
        let (territories, territory_warnings) = Territories::build(&rows.territories, &territory_prefixes);
        warnings.extend(territory_warnings);
        for a in &rows.addresses {
            let Some(cluster) = clusters.get_mut(&a.cluster_id) else {
                continue;
            };
            let territory = match &a.territory {
                None => 0,
                Some(name) => match territories.index(name) {
                    Some(t) => t,
                    None => {
                        warnings.push(format!(
                            "address {} of cluster {} skipped: unknown territory {name:?}",
                            a.address, cluster.name
                        ));
                        continue;
                    }
                },
            };
            match IpAddr::from_str(&a.address) {
                Ok(ip) => {
                    cluster.addresses.push(ClusterAddress { ip, weight: a.weight, queue: a.queue, territory })
                }
                Err(e) => {
                    warnings.push(format!("address {:?} of cluster {} skipped: {e}", a.address, cluster.name))
                }
            }
        }
        for c in &rows.checks {
            let Some(cluster) = clusters.get_mut(&c.cluster_id) else {
                continue;
            };
            let c = &c.check;
            let probe = match c.target.kind {
                CheckKind::Http => {
                    Probe::Http { path: c.target.path.clone(), host: c.host.clone(), expect: c.expect_status }
                }
                CheckKind::Tcp => Probe::Tcp,
            };
            cluster.steering.check = Some(Check {
                probe,
                port: c.target.port,
                interval: Duration::from_millis(c.interval_ms.into()),
                timeout: Duration::from_millis(c.timeout_ms.into()),
                rise: c.rise.max(1),
                fall: c.fall.max(1),
            });
        }
        for cluster in clusters.values_mut() {
            if cluster.steering.pick_one && cluster.addresses.iter().any(|a| a.territory != 0) {
                warnings.push(format!(
                    "cluster {}: pick one is not combined with territories; answering all addresses",
                    cluster.name
                ));
                cluster.steering.pick_one = false;
            }
        }

        let keys = Keys::build(&rows.keys, &mut warnings);
        let zones = zones.into_values().map(|z| (z.apex.clone(), Arc::new(z))).collect();
        (Self { zones, clusters, territories, keys }, warnings)
    }

    /// The zone with this id.
    pub fn zone_by_id(&self, id: i64) -> Option<&Arc<Zone>> {
        self.zones.values().find(|z| z.id == id)
    }

    /// Whether `other` holds the same zones (by apex).
    pub fn same_zones(&self, other: &Catalog) -> bool {
        self.zones.len() == other.zones.len() && self.zones.keys().all(|apex| other.zones.contains_key(apex))
    }

    /// The zone with the longest apex that is a suffix of `qname` (lower-cased).
    pub fn find_zone(&self, qname: &Name) -> Option<&Arc<Zone>> {
        (0..=label_count(qname)).rev().find_map(|n| self.zones.get(&qname.trim_to(n)))
    }

    pub fn zones(&self) -> impl Iterator<Item = &Arc<Zone>> {
        self.zones.values()
    }

    /// Every service name some cluster offers.
    pub fn service_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.clusters.values().flat_map(|c| c.services.keys().cloned()).collect();
        names.sort();
        names.dedup();
        names
    }
}
