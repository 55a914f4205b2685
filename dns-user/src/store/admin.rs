//! Management operations behind the CLI (and later an HTTP API): zones, clusters,
//! instances, custom domains, ACME challenges. Inputs are validated here, and errors
//! name what was wrong.

use std::{net::IpAddr, str::FromStr as _};

use hickory_proto::{
    rr::{Name, RData, RecordType},
    serialize::txt::Parser,
};

use super::{
    AcmeChallenge, CHECK_COLUMNS, CLUSTER_COLUMNS, CheckRow, ClusterRow, Database, Instance, RecordRow,
    StoreError, TerritoryPrefixRow, Tombstone, ZoneRow, check_row, cluster_row,
    demo::DEMO_SQL,
    sql::{Statement, Value},
    unix_now,
};
use crate::{params, resolver::rules::Pattern, steering::territory::Prefix};

/// Refuses to run against a schema newer than this binary knows.
pub fn check_schema_version(current: u32, migrations: &[(u32, String)]) -> Result<(), StoreError> {
    let newest = migrations.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(StoreError::Invalid(format!(
            "the database schema is version {current}, newer than this binary knows ({newest}): upgrade instadns"
        )));
    }
    Ok(())
}

/// An absolute, lower-cased domain name from user input (`what` names the argument).
pub fn absolute_name(input: &str, what: &str) -> Result<String, StoreError> {
    let text = if input.ends_with('.') { input.to_owned() } else { format!("{input}.") };
    let name = Name::from_ascii(&text)
        .map_err(|e| StoreError::Invalid(format!("{what}: {input:?} is not a domain name: {e}")))?;
    if name.is_root() {
        return Err(StoreError::Invalid(format!("{what}: the root is not allowed here")));
    }
    Ok(name.to_lowercase().to_ascii())
}

/// RDATA in zone-file form. TXT strings are quoted and escaped (hickory prints them
/// bare, which would not read back).
pub fn presentation(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| {
                let mut out = String::from("\"");
                for &b in s.iter() {
                    match b {
                        b'"' | b'\\' => {
                            out.push('\\');
                            out.push(b as char);
                        }
                        0x20..=0x7e => out.push(b as char),
                        _ => out.push_str(&format!("\\{b:03}")),
                    }
                }
                out.push('"');
                out
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// A new zone.
#[derive(Clone, Debug)]
pub struct NewZone {
    pub apex: String,
    pub soa_mname: String,
    pub soa_rname: String,
    pub ns: Vec<String>,
    pub soa_minimum: u32,
    pub ttl: u32,
    /// Name rules as (pattern, kind, ttl).
    pub rules: Vec<(String, String, u32)>,
}

/// A cluster with its services and addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterInfo {
    pub cluster: ClusterRow,
    pub services: Vec<(String, String)>,
    pub addresses: Vec<AddressSpec>,
    pub check: Option<CheckRow>,
    pub instances: i64,
}

/// An address of a cluster with its steering attributes, as the CLI writes it:
/// `IP[,weight=N][,queue=N][,territory=NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressSpec {
    pub ip: IpAddr,
    pub weight: u32,
    pub queue: u32,
    pub territory: Option<String>,
}

impl std::str::FromStr for AddressSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = text.split(',');
        let ip = parts.next().unwrap_or_default().trim();
        let ip: IpAddr = ip.parse().map_err(|_| format!("{ip:?} is not an IPv4 or IPv6 address"))?;
        let mut spec = Self { ip, weight: 1, queue: 0, territory: None };
        for part in parts {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("{part:?}: use KEY=VALUE"))?;
            let number = || value.parse::<u32>().map_err(|_| format!("{key}={value:?}: not a number"));
            match key.trim() {
                "weight" => {
                    spec.weight = number()?;
                    if spec.weight > 1_000_000 {
                        return Err(format!("weight={value}: at most 1000000"));
                    }
                }
                "queue" => spec.queue = number()?,
                "territory" => spec.territory = Some(value.trim().to_owned()),
                other => return Err(format!("{other:?}: use weight, queue or territory")),
            }
        }
        Ok(spec)
    }
}

impl std::fmt::Display for AddressSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.ip)?;
        if self.weight != 1 {
            write!(f, ",weight={}", self.weight)?;
        }
        if self.queue != 0 {
            write!(f, ",queue={}", self.queue)?;
        }
        if let Some(t) = &self.territory {
            write!(f, ",territory={t}")?;
        }
        Ok(())
    }
}

/// Changes to a cluster.
#[derive(Clone, Debug, Default)]
pub struct ClusterUpdate {
    /// (service, target) to set.
    pub set_services: Vec<(String, String)>,
    pub remove_services: Vec<String>,
    /// Addresses to add, or to update if present.
    pub add_addresses: Vec<AddressSpec>,
    pub remove_addresses: Vec<IpAddr>,
    /// `fixed` or `rotate`.
    pub address_order: Option<String>,
    /// `all` or `one`.
    pub pick: Option<String>,
    /// `all` or `last`.
    pub fallback: Option<String>,
    /// A health check to set (its `cluster_id` is ignored).
    pub check: Option<CheckRow>,
    pub remove_check: bool,
}

/// An instance with what hangs off it.
#[derive(Clone, Debug)]
pub struct InstanceInfo {
    pub instance: Instance,
    pub cluster: String,
    pub domains: Vec<String>,
    pub tombstones: Vec<Tombstone>,
}

fn validate_kind(kind: &str) -> Result<(), StoreError> {
    match kind {
        "service" | "host" | "tombstone" => Ok(()),
        other => Err(StoreError::Invalid(format!("rule kind {other:?}: use service, host or tombstone"))),
    }
}

/// Cluster and territory names: letters, digits, '-' and '_'.
fn validate_identifier(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(StoreError::Invalid(format!("{what} {name:?}: use letters, digits, '-' and '_'")));
    }
    Ok(())
}

fn validate_choice(flag: &str, value: &str, allowed: &[&str]) -> Result<(), StoreError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!("{flag} {value:?}: use {}", allowed.join(" or "))))
    }
}

fn validate_check(c: &CheckRow) -> Result<(), StoreError> {
    validate_choice("--check", &c.kind, &["tcp", "http"])?;
    let bad = |what: String| Err(StoreError::Invalid(what));
    if c.port == 0 {
        return bad("--check: the port must be 1-65535".into());
    }
    if !c.path.starts_with('/') || c.path.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        return bad(format!("--check path {:?}: an absolute path without spaces", c.path));
    }
    if !(100..=599).contains(&c.expect_status) {
        return bad(format!("--check-expect {}: an HTTP status 100-599", c.expect_status));
    }
    if c.interval_ms < 100 {
        return bad(format!("--check-interval {} ms: at least 100 ms", c.interval_ms));
    }
    if c.timeout_ms < 10 || c.timeout_ms > c.interval_ms {
        return bad(format!("--check-timeout {} ms: at least 10 ms and at most the interval", c.timeout_ms));
    }
    if c.rise == 0 || c.fall == 0 {
        return bad("--rise and --fall: at least 1".into());
    }
    Ok(())
}

fn validate_order(order: &str) -> Result<(), StoreError> {
    match order {
        "fixed" | "rotate" => Ok(()),
        other => Err(StoreError::Invalid(format!("--order {other:?}: use fixed or rotate"))),
    }
}

pub(super) fn zone_row(r: &super::sql::Row) -> Result<ZoneRow, StoreError> {
    Ok(ZoneRow {
        id: r.int(0)?,
        apex: r.text(1)?,
        soa_mname: r.text(2)?,
        soa_rname: r.text(3)?,
        soa_serial: r.u32(4)?,
        soa_refresh: r.u32(5)?,
        soa_retry: r.u32(6)?,
        soa_expire: r.u32(7)?,
        soa_minimum: r.u32(8)?,
        soa_ttl: r.u32(9)?,
        ns_ttl: r.u32(10)?,
        default_ttl: r.u32(11)?,
    })
}

pub(super) const ZONE_COLUMNS: &str = "id, apex, soa_mname, soa_rname, soa_serial, soa_refresh, soa_retry, soa_expire, \
                            soa_minimum, soa_ttl, ns_ttl, default_ttl";

impl Database {
    /// Loads the demo data (what a new SQLite file starts with).
    pub async fn seed_demo(&self) -> Result<(), StoreError> {
        let statements: Vec<Statement> = DEMO_SQL
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_owned(), Vec::new()))
            .collect();
        self.transaction(statements).await.map(|_| ())
    }

    pub async fn zone_id(&self, apex: &str) -> Result<i64, StoreError> {
        let apex = absolute_name(apex, "zone")?;
        self.query_opt("SELECT id FROM zones WHERE apex = $1", params![apex.as_str()])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("zone {apex}")))?
            .int(0)
    }

    pub async fn add_zone(&self, zone: &NewZone) -> Result<i64, StoreError> {
        let apex = absolute_name(&zone.apex, "APEX")?;
        let mname = absolute_name(&zone.soa_mname, "--mname")?;
        let rname = absolute_name(&zone.soa_rname, "--rname")?;
        if zone.ns.is_empty() {
            return Err(StoreError::Invalid("--ns: a zone needs at least one name server".into()));
        }
        let ns = zone.ns.iter().map(|n| absolute_name(n, "--ns")).collect::<Result<Vec<_>, _>>()?;
        for (pattern, kind, _) in &zone.rules {
            Pattern::parse(pattern).map_err(|e| StoreError::Invalid(format!("--rule: {e}")))?;
            validate_kind(kind)?;
        }
        if self.query_opt("SELECT 1 FROM zones WHERE apex = $1", params![apex.as_str()]).await?.is_some() {
            return Err(StoreError::Conflict(format!("zone {apex} already exists")));
        }
        let mut statements: Vec<Statement> = vec![(
            "INSERT INTO zones (apex, soa_mname, soa_rname, soa_serial, soa_minimum, soa_ttl, ns_ttl, default_ttl) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
                .into(),
            params![apex.as_str(), mname, rname, unix_now(), zone.soa_minimum, zone.ttl, zone.ttl, zone.ttl],
        )];
        for n in ns {
            statements.push((
                "INSERT INTO zone_ns (zone_id, nsdname) SELECT id, $1 FROM zones WHERE apex = $2".into(),
                params![n, apex.as_str()],
            ));
        }
        for (pattern, kind, ttl) in &zone.rules {
            statements.push((
                "INSERT INTO name_rules (zone_id, pattern, kind, ttl) SELECT id, $1, $2, $3 FROM zones WHERE apex = $4"
                    .into(),
                params![pattern.as_str(), kind.as_str(), *ttl, apex.as_str()],
            ));
        }
        let results = self.transaction(statements).await?;
        results[0].first().ok_or_else(|| StoreError::Invalid("zone insert returned no id".into()))?.int(0)
    }

    pub async fn list_zones(
        &self,
    ) -> Result<Vec<(ZoneRow, Vec<String>, Vec<(String, String, u32)>)>, StoreError> {
        let zones = self.query(&format!("SELECT {ZONE_COLUMNS} FROM zones ORDER BY apex"), vec![]).await?;
        let mut out = Vec::new();
        for z in zones.iter().map(zone_row) {
            let z = z?;
            let ns = self
                .query("SELECT nsdname FROM zone_ns WHERE zone_id = $1 ORDER BY nsdname", params![z.id])
                .await?
                .iter()
                .map(|r| r.text(0))
                .collect::<Result<Vec<_>, _>>()?;
            let rules = self
                .query(
                    "SELECT pattern, kind, ttl FROM name_rules WHERE zone_id = $1 ORDER BY id",
                    params![z.id],
                )
                .await?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?, r.u32(2)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.push((z, ns, rules));
        }
        Ok(out)
    }

    pub async fn add_rule(&self, apex: &str, pattern: &str, kind: &str, ttl: u32) -> Result<(), StoreError> {
        Pattern::parse(pattern).map_err(|e| StoreError::Invalid(format!("PATTERN: {e}")))?;
        validate_kind(kind)?;
        let zone = self.zone_id(apex).await?;
        self.execute(
            "INSERT INTO name_rules (zone_id, pattern, kind, ttl) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (zone_id, pattern) DO UPDATE SET kind = excluded.kind, ttl = excluded.ttl",
            params![zone, pattern, kind, ttl],
        )
        .await?;
        Ok(())
    }

    pub async fn remove_rule(&self, apex: &str, pattern: &str) -> Result<(), StoreError> {
        let zone = self.zone_id(apex).await?;
        match self
            .execute("DELETE FROM name_rules WHERE zone_id = $1 AND pattern = $2", params![zone, pattern])
            .await?
        {
            0 => Err(StoreError::NotFound(format!("rule {pattern:?} in zone {apex}"))),
            _ => Ok(()),
        }
    }

    /// Imports an RFC 1035 zone file: the SOA and apex NS set define the zone, every
    /// other record becomes a static record. An existing zone's static records are
    /// replaced; its name rules stay. Returns (apex, records imported).
    pub async fn import_zone(&self, text: &str, origin: Option<&str>) -> Result<(String, usize), StoreError> {
        let origin = origin.map(|o| absolute_name(o, "--origin")).transpose()?;
        let origin =
            origin.map(Name::from_ascii).transpose().map_err(|e| StoreError::Invalid(e.to_string()))?;
        let (apex, sets) = Parser::new(text, None, origin)
            .parse()
            .map_err(|e| StoreError::Invalid(format!("zone file: {e}")))?;
        let apex = apex.to_lowercase();
        let apex_text = apex.to_ascii();
        let mut soa = None;
        let mut ns = Vec::new();
        let mut records = Vec::new();
        for set in sets.values() {
            for record in set.records_without_rrsigs() {
                let owner = record.name.to_lowercase();
                match (&record.data, owner == apex) {
                    (RData::SOA(s), true) => soa = Some((s.clone(), record.ttl)),
                    (RData::NS(n), true) => ns.push((n.0.to_lowercase().to_ascii(), record.ttl)),
                    (RData::SOA(_), false) => {
                        return Err(StoreError::Invalid(format!(
                            "zone file: SOA at {owner}, not at the apex {apex}"
                        )));
                    }
                    (data, _) => {
                        if !apex.zone_of(&owner) {
                            return Err(StoreError::Invalid(format!("zone file: {owner} is outside {apex}")));
                        }
                        records.push((
                            owner.to_ascii(),
                            record.record_type().to_string(),
                            record.ttl,
                            presentation(data),
                        ));
                    }
                }
            }
        }
        let (soa, soa_ttl) =
            soa.ok_or_else(|| StoreError::Invalid(format!("zone file: no SOA record at {apex}")))?;
        if ns.is_empty() {
            return Err(StoreError::Invalid(format!("zone file: no NS records at {apex}")));
        }
        let ns_ttl = ns[0].1;
        let mut statements: Vec<Statement> = vec![
            (
                "INSERT INTO zones (apex, soa_mname, soa_rname, soa_serial, soa_refresh, soa_retry, soa_expire, \
                 soa_minimum, soa_ttl, ns_ttl, default_ttl) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (apex) DO UPDATE SET soa_mname = excluded.soa_mname, soa_rname = excluded.soa_rname, \
                 soa_serial = excluded.soa_serial, soa_refresh = excluded.soa_refresh, soa_retry = excluded.soa_retry, \
                 soa_expire = excluded.soa_expire, soa_minimum = excluded.soa_minimum, soa_ttl = excluded.soa_ttl, \
                 ns_ttl = excluded.ns_ttl"
                    .into(),
                params![
                    apex_text.as_str(),
                    soa.mname.to_lowercase().to_ascii(),
                    soa.rname.to_lowercase().to_ascii(),
                    soa.serial,
                    soa.refresh.max(0) as u32,
                    soa.retry.max(0) as u32,
                    soa.expire.max(0) as u32,
                    soa.minimum,
                    soa_ttl,
                    ns_ttl,
                    soa_ttl
                ],
            ),
            ("DELETE FROM zone_ns WHERE zone_id = (SELECT id FROM zones WHERE apex = $1)".into(), params![apex_text.as_str()]),
            ("DELETE FROM records WHERE zone_id = (SELECT id FROM zones WHERE apex = $1)".into(), params![apex_text.as_str()]),
        ];
        for (n, _) in &ns {
            statements.push((
                "INSERT INTO zone_ns (zone_id, nsdname) SELECT id, $1 FROM zones WHERE apex = $2".into(),
                params![n.as_str(), apex_text.as_str()],
            ));
        }
        let count = records.len();
        for (owner, rtype, ttl, rdata) in records {
            statements.push((
                "INSERT INTO records (zone_id, name, rtype, ttl, rdata) SELECT id, $1, $2, $3, $4 FROM zones WHERE apex = $5"
                    .into(),
                params![owner, rtype, ttl, rdata, apex_text.as_str()],
            ));
        }
        self.transaction(statements).await?;
        Ok((apex_text, count))
    }

    /// The zone's data as an RFC 1035 zone file: SOA, NS and static records (names that
    /// rules derive from instances are not zone data and are not exported).
    pub async fn export_zone(&self, apex: &str) -> Result<String, StoreError> {
        let id = self.zone_id(apex).await?;
        let z = zone_row(
            &self
                .query_opt(&format!("SELECT {ZONE_COLUMNS} FROM zones WHERE id = $1"), params![id])
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("zone {apex}")))?,
        )?;
        let mut out = format!(
            "; zone {} exported by instadns (static data; names from rules are answered live)\n$ORIGIN {}\n",
            z.apex, z.apex
        );
        out += &format!(
            "{} {} IN SOA {} {} {} {} {} {} {}\n",
            z.apex,
            z.soa_ttl,
            z.soa_mname,
            z.soa_rname,
            z.soa_serial,
            z.soa_refresh,
            z.soa_retry,
            z.soa_expire,
            z.soa_minimum
        );
        for r in
            self.query("SELECT nsdname FROM zone_ns WHERE zone_id = $1 ORDER BY nsdname", params![id]).await?
        {
            out += &format!("{} {} IN NS {}\n", z.apex, z.ns_ttl, r.text(0)?);
        }
        for r in self.records(id).await? {
            out += &format!("{} {} IN {} {}\n", r.name, r.ttl, r.rtype, r.rdata);
        }
        Ok(out)
    }

    pub async fn records(&self, zone_id: i64) -> Result<Vec<RecordRow>, StoreError> {
        self.query("SELECT id, zone_id, name, rtype, ttl, rdata FROM records WHERE zone_id = $1 ORDER BY name, rtype, id", params![zone_id])
            .await?
            .iter()
            .map(|r| {
                Ok(RecordRow { id: r.int(0)?, zone_id: r.int(1)?, name: r.text(2)?, rtype: r.text(3)?, ttl: r.u32(4)?, rdata: r.text(5)? })
            })
            .collect()
    }

    /// Adds a static record (validated as the server will parse it).
    pub async fn add_record(
        &self,
        apex: &str,
        name: &str,
        rtype: &str,
        ttl: Option<u32>,
        rdata: &str,
    ) -> Result<(), StoreError> {
        let zone = self.zone_id(apex).await?;
        let owner = absolute_name(name, "NAME")?;
        let zone_apex = absolute_name(apex, "zone")?;
        if !Name::from_ascii(&zone_apex)
            .map_err(|e| StoreError::Invalid(e.to_string()))?
            .zone_of(&Name::from_ascii(&owner).map_err(|e| StoreError::Invalid(e.to_string()))?)
        {
            return Err(StoreError::Invalid(format!("NAME: {owner} is outside zone {zone_apex}")));
        }
        let rtype = rtype.to_ascii_uppercase();
        let t =
            RecordType::from_str(&rtype).map_err(|e| StoreError::Invalid(format!("TYPE {rtype:?}: {e}")))?;
        RData::try_from_str(t, rdata)
            .map_err(|e| StoreError::Invalid(format!("DATA {rdata:?} for {rtype}: {e}")))?;
        let ttl: Value = match ttl {
            Some(t) => t.into(),
            None => {
                let row =
                    self.query_opt("SELECT default_ttl FROM zones WHERE id = $1", params![zone]).await?;
                row.map(|r| r.int(0)).transpose()?.into()
            }
        };
        self.execute(
            "INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES ($1, $2, $3, $4, $5)",
            vec![zone.into(), owner.into(), rtype.into(), ttl, rdata.into()],
        )
        .await?;
        Ok(())
    }

    pub async fn cluster_id(&self, name: &str) -> Result<i64, StoreError> {
        self.query_opt("SELECT id FROM clusters WHERE name = $1", params![name])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("cluster {name:?}")))?
            .int(0)
    }

    pub async fn add_cluster(
        &self,
        name: &str,
        order: &str,
        update: &ClusterUpdate,
    ) -> Result<(), StoreError> {
        validate_identifier("NAME", name)?;
        validate_order(order)?;
        if self.query_opt("SELECT 1 FROM clusters WHERE name = $1", params![name]).await?.is_some() {
            return Err(StoreError::Conflict(format!("cluster {name:?} already exists")));
        }
        self.execute("INSERT INTO clusters (name, address_order) VALUES ($1, $2)", params![name, order])
            .await?;
        self.set_cluster(name, update).await
    }

    pub async fn set_cluster(&self, name: &str, update: &ClusterUpdate) -> Result<(), StoreError> {
        let id = self.cluster_id(name).await?;
        let mut statements: Vec<Statement> = Vec::new();
        for (service, target) in &update.set_services {
            let target = absolute_name(target, "--service")?;
            if service.is_empty()
                || !service
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            {
                return Err(StoreError::Invalid(format!(
                    "--service {service:?}: use lower-case letters, digits, '-' and '_'"
                )));
            }
            statements.push((
                "INSERT INTO cluster_services (cluster_id, service, target) VALUES ($1, $2, $3) \
                 ON CONFLICT (cluster_id, service) DO UPDATE SET target = excluded.target"
                    .into(),
                params![id, service.as_str(), target],
            ));
        }
        for service in &update.remove_services {
            statements.push((
                "DELETE FROM cluster_services WHERE cluster_id = $1 AND service = $2".into(),
                params![id, service.as_str()],
            ));
        }
        for address in &update.add_addresses {
            if let Some(territory) = &address.territory
                && self
                    .query_opt("SELECT 1 FROM territories WHERE name = $1", params![territory.as_str()])
                    .await?
                    .is_none()
            {
                return Err(StoreError::NotFound(format!(
                    "territory {territory:?} (add it with `instadns territory add {territory}`)"
                )));
            }
            statements.push((
                "INSERT INTO cluster_addresses (cluster_id, address, weight, queue, territory) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (cluster_id, address) DO UPDATE SET \
                 weight = excluded.weight, queue = excluded.queue, territory = excluded.territory"
                    .into(),
                params![
                    id,
                    address.ip.to_string(),
                    address.weight,
                    address.queue,
                    address.territory.as_deref()
                ],
            ));
        }
        for address in &update.remove_addresses {
            statements.push((
                "DELETE FROM cluster_addresses WHERE cluster_id = $1 AND address = $2".into(),
                params![id, address.to_string()],
            ));
        }
        if let Some(order) = &update.address_order {
            validate_order(order)?;
            statements.push((
                "UPDATE clusters SET address_order = $1 WHERE id = $2".into(),
                params![order.as_str(), id],
            ));
        }
        if let Some(pick) = &update.pick {
            validate_choice("--pick", pick, &["all", "one"])?;
            statements
                .push(("UPDATE clusters SET pick = $1 WHERE id = $2".into(), params![pick.as_str(), id]));
        }
        if let Some(fallback) = &update.fallback {
            validate_choice("--fallback", fallback, &["all", "last"])?;
            statements.push((
                "UPDATE clusters SET fallback = $1 WHERE id = $2".into(),
                params![fallback.as_str(), id],
            ));
        }
        if update.remove_check {
            statements.push(("DELETE FROM cluster_checks WHERE cluster_id = $1".into(), params![id]));
        }
        if let Some(c) = &update.check {
            validate_check(c)?;
            statements.push((
                "INSERT INTO cluster_checks (cluster_id, kind, port, path, host, expect_status, interval_ms, \
                 timeout_ms, rise, fall) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (cluster_id) DO UPDATE SET kind = excluded.kind, port = excluded.port, \
                 path = excluded.path, host = excluded.host, expect_status = excluded.expect_status, \
                 interval_ms = excluded.interval_ms, timeout_ms = excluded.timeout_ms, rise = excluded.rise, \
                 fall = excluded.fall"
                    .into(),
                params![
                    id,
                    c.kind.as_str(),
                    c.port as u32,
                    c.path.as_str(),
                    c.host.as_deref(),
                    c.expect_status as u32,
                    c.interval_ms,
                    c.timeout_ms,
                    c.rise,
                    c.fall
                ],
            ));
        }
        if !statements.is_empty() {
            self.transaction(statements).await?;
        }
        Ok(())
    }

    /// Adds a territory, or (`replace`) replaces the prefixes of an existing one; then
    /// adds `add` and removes `remove`. One transaction: the kernel's tries change once.
    pub async fn set_territory(
        &self,
        name: &str,
        create: bool,
        replace: bool,
        add: &[Prefix],
        remove: &[Prefix],
    ) -> Result<(), StoreError> {
        validate_identifier("territory", name)?;
        let exists = self.query_opt("SELECT id FROM territories WHERE name = $1", params![name]).await?;
        match (create, exists.is_some()) {
            (true, true) => return Err(StoreError::Conflict(format!("territory {name:?} already exists"))),
            (false, false) => return Err(StoreError::NotFound(format!("territory {name:?}"))),
            (true, false) => {
                let count = self
                    .query_opt("SELECT COUNT(*) FROM territories", vec![])
                    .await?
                    .map_or(Ok(0), |r| r.int(0))?;
                if count as usize >= dns_common::maps::MAX_TERRITORIES {
                    return Err(StoreError::Invalid(format!(
                        "at most {} territories",
                        dns_common::maps::MAX_TERRITORIES
                    )));
                }
                self.execute("INSERT INTO territories (name) VALUES ($1)", params![name]).await?;
            }
            (false, true) => {}
        }
        let id = self
            .query_opt("SELECT id FROM territories WHERE name = $1", params![name])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("territory {name:?}")))?
            .int(0)?;
        let mut statements: Vec<Statement> = Vec::new();
        if replace {
            statements.push(("DELETE FROM territory_prefixes WHERE territory_id = $1".into(), params![id]));
        }
        for p in remove {
            statements.push((
                "DELETE FROM territory_prefixes WHERE territory_id = $1 AND prefix = $2".into(),
                params![id, p.to_string()],
            ));
        }
        for p in add {
            statements.push((
                "INSERT INTO territory_prefixes (territory_id, prefix) VALUES ($1, $2) ON CONFLICT DO NOTHING".into(),
                params![id, p.to_string()],
            ));
        }
        if !statements.is_empty() {
            self.transaction(statements).await?;
        }
        Ok(())
    }

    /// Removes a territory no address uses.
    pub async fn remove_territory(&self, name: &str) -> Result<(), StoreError> {
        let users = self
            .query_opt("SELECT COUNT(*) FROM cluster_addresses WHERE territory = $1", params![name])
            .await?
            .map_or(Ok(0), |r| r.int(0))?;
        if users > 0 {
            return Err(StoreError::Conflict(format!(
                "territory {name:?} is used by {users} cluster address(es); remove or change them first"
            )));
        }
        if self.execute("DELETE FROM territories WHERE name = $1", params![name]).await? == 0 {
            return Err(StoreError::NotFound(format!("territory {name:?}")));
        }
        Ok(())
    }

    /// Every territory's name (in id order) and every prefix with its territory.
    pub async fn territory_rows(&self) -> Result<(Vec<String>, Vec<TerritoryPrefixRow>), StoreError> {
        let names = self.query("SELECT name FROM territories ORDER BY id", vec![]).await?;
        let prefixes = self
            .query(
                "SELECT t.name, p.prefix FROM territory_prefixes p JOIN territories t ON t.id = p.territory_id \
                 ORDER BY t.id, p.prefix",
                vec![],
            )
            .await?;
        Ok((
            names.iter().map(|r| r.text(0)).collect::<Result<_, StoreError>>()?,
            prefixes
                .iter()
                .map(|r| Ok(TerritoryPrefixRow { territory: r.text(0)?, prefix: r.text(1)? }))
                .collect::<Result<_, StoreError>>()?,
        ))
    }

    /// Every territory: (name, prefixes).
    pub async fn list_territories(&self) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let (names, prefixes) = self.territory_rows().await?;
        Ok(names
            .into_iter()
            .map(|name| {
                let own = prefixes.iter().filter(|p| p.territory == name).map(|p| p.prefix.clone()).collect();
                (name, own)
            })
            .collect())
    }

    pub async fn list_clusters(&self) -> Result<Vec<ClusterInfo>, StoreError> {
        let mut out = Vec::new();
        for r in self.query(&format!("SELECT {CLUSTER_COLUMNS} FROM clusters ORDER BY name"), vec![]).await? {
            let cluster = cluster_row(&r)?;
            let services = self
                .query(
                    "SELECT service, target FROM cluster_services WHERE cluster_id = $1 ORDER BY service",
                    params![cluster.id],
                )
                .await?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let addresses = self
                .query(
                    "SELECT address, weight, queue, territory FROM cluster_addresses WHERE cluster_id = $1 \
                     ORDER BY queue, address",
                    params![cluster.id],
                )
                .await?
                .iter()
                .map(|r| {
                    let text = r.text(0)?;
                    Ok(AddressSpec {
                        ip: text
                            .parse()
                            .map_err(|_| StoreError::Invalid(format!("stored address {text:?}")))?,
                        weight: r.u32(1)?,
                        queue: r.u32(2)?,
                        territory: r.opt_text(3)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let check = self
                .query_opt(
                    &format!("SELECT {CHECK_COLUMNS} FROM cluster_checks WHERE cluster_id = $1"),
                    params![cluster.id],
                )
                .await?
                .as_ref()
                .map(check_row)
                .transpose()?;
            let instances = self
                .query_opt("SELECT COUNT(*) FROM instances WHERE cluster_id = $1", params![cluster.id])
                .await?
                .map_or(Ok(0), |r| r.int(0))?;
            out.push(ClusterInfo { cluster, services, addresses, check, instances });
        }
        Ok(out)
    }

    pub async fn add_instance(
        &self,
        id: i64,
        cluster: &str,
        name: Option<&str>,
        owner: Option<&str>,
        ttl: Option<u32>,
    ) -> Result<(), StoreError> {
        if id < 0 {
            return Err(StoreError::Invalid(format!("ID {id}: instance ids are not negative")));
        }
        for (value, what) in [(name, "--name"), (owner, "--owner")] {
            if let Some(v) = value
                && (v.is_empty()
                    || v.len() > 63
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'))
            {
                return Err(StoreError::Invalid(format!(
                    "{what} {v:?}: a DNS label of lower-case letters, digits, '-' and '_'"
                )));
            }
        }
        if name.is_some() != owner.is_some() {
            return Err(StoreError::Invalid("--name and --owner go together".into()));
        }
        let cluster_id = self.cluster_id(cluster).await?;
        if self.instance(id).await?.is_some() {
            return Err(StoreError::Conflict(format!("instance {id} already exists")));
        }
        self.execute(
            "INSERT INTO instances (id, name, owner, cluster_id, ttl) VALUES ($1, $2, $3, $4, $5)",
            params![id, name, owner, cluster_id, ttl],
        )
        .await
        .map_err(|e| match e {
            e if e.to_string().contains("UNIQUE") || e.to_string().contains("unique") => {
                StoreError::Conflict(format!(
                    "{}.{} is taken",
                    name.unwrap_or_default(),
                    owner.unwrap_or_default()
                ))
            }
            e => e,
        })?;
        Ok(())
    }

    pub async fn instance(&self, id: i64) -> Result<Option<Instance>, StoreError> {
        let row = self
            .query_opt("SELECT id, name, owner, cluster_id, ttl FROM instances WHERE id = $1", params![id])
            .await?;
        row.as_ref().map(super::instance).transpose()
    }

    /// Moves an instance to another cluster and records a tombstone of the old one.
    /// Returns the tombstone.
    pub async fn move_instance(&self, id: i64, to: &str) -> Result<Tombstone, StoreError> {
        let instance =
            self.instance(id).await?.ok_or_else(|| StoreError::NotFound(format!("instance {id}")))?;
        let to_id = self.cluster_id(to).await?;
        if instance.cluster_id == to_id {
            return Err(StoreError::Conflict(format!("instance {id} is already on cluster {to:?}")));
        }
        let from = self
            .query_opt("SELECT name FROM clusters WHERE id = $1", params![instance.cluster_id])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("cluster of instance {id}")))?
            .text(0)?;
        let now = unix_now();
        self.transaction(vec![
            (
                "INSERT INTO tombstones (instance_id, from_cluster, to_cluster, moved_at) VALUES ($1, $2, $3, $4)".into(),
                params![id, from.as_str(), to, now],
            ),
            ("UPDATE instances SET cluster_id = $1 WHERE id = $2".into(), params![to_id, id]),
        ])
        .await?;
        Ok(Tombstone { instance_id: id, from_cluster: from, to_cluster: to.to_owned(), moved_at: now })
    }

    pub async fn set_instance_ttl(&self, id: i64, ttl: Option<u32>) -> Result<(), StoreError> {
        match self.execute("UPDATE instances SET ttl = $1 WHERE id = $2", params![ttl, id]).await? {
            0 => Err(StoreError::NotFound(format!("instance {id}"))),
            _ => Ok(()),
        }
    }

    /// The TTL overrides of a cluster's instances: (override, instances), None first.
    pub async fn cluster_instance_ttls(&self, cluster: &str) -> Result<Vec<(Option<u32>, i64)>, StoreError> {
        let cluster_id = self.cluster_id(cluster).await?;
        let rows = self
            .query(
                "SELECT ttl, COUNT(*) FROM instances WHERE cluster_id = $1 GROUP BY ttl ORDER BY ttl",
                params![cluster_id],
            )
            .await?;
        rows.iter().map(|r| Ok((r.opt_int(0)?.map(|t| t as u32), r.int(1)?))).collect()
    }

    /// Sets (or clears) the TTL override of every instance on a cluster; returns how many.
    pub async fn set_cluster_instances_ttl(
        &self,
        cluster: &str,
        ttl: Option<u32>,
    ) -> Result<u64, StoreError> {
        let cluster_id = self.cluster_id(cluster).await?;
        self.execute("UPDATE instances SET ttl = $1 WHERE cluster_id = $2", params![ttl, cluster_id]).await
    }

    /// The static records at `name` (lower-case, absolute): (type, TTL).
    pub async fn record_ttls_at(&self, name: &str) -> Result<Vec<(String, u32)>, StoreError> {
        let rows = self
            .query("SELECT rtype, ttl FROM records WHERE name = $1 ORDER BY rtype, id", params![name])
            .await?;
        rows.iter().map(|r| Ok((r.text(0)?, r.int(1)? as u32))).collect()
    }

    pub async fn set_record_ttl(&self, name: &str, ttl: u32) -> Result<u64, StoreError> {
        self.execute("UPDATE records SET ttl = $1 WHERE name = $2", params![ttl, name]).await
    }

    pub async fn remove_instance(&self, id: i64) -> Result<(), StoreError> {
        match self.execute("DELETE FROM instances WHERE id = $1", params![id]).await? {
            0 => Err(StoreError::NotFound(format!("instance {id}"))),
            _ => Ok(()),
        }
    }

    pub async fn show_instance(&self, id: i64) -> Result<InstanceInfo, StoreError> {
        let instance =
            self.instance(id).await?.ok_or_else(|| StoreError::NotFound(format!("instance {id}")))?;
        let cluster = self
            .query_opt("SELECT name FROM clusters WHERE id = $1", params![instance.cluster_id])
            .await?
            .map_or(Ok(String::from("?")), |r| r.text(0))?;
        let domains = self
            .query("SELECT hostname FROM domains WHERE instance_id = $1 ORDER BY hostname", params![id])
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<Vec<_>, _>>()?;
        let tombstones = self
            .query(
                "SELECT instance_id, from_cluster, to_cluster, moved_at FROM tombstones WHERE instance_id = $1 ORDER BY moved_at, id",
                params![id],
            )
            .await?
            .iter()
            .map(|r| Ok(Tombstone { instance_id: r.int(0)?, from_cluster: r.text(1)?, to_cluster: r.text(2)?, moved_at: r.int(3)? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(InstanceInfo { instance, cluster, domains, tombstones })
    }

    pub async fn list_instances(
        &self,
        cluster: Option<&str>,
        limit: i64,
    ) -> Result<Vec<(Instance, String)>, StoreError> {
        let rows = match cluster {
            Some(c) => {
                let cid = self.cluster_id(c).await?;
                self.query(
                    "SELECT i.id, i.name, i.owner, i.cluster_id, i.ttl, c.name FROM instances i JOIN clusters c ON c.id = i.cluster_id \
                     WHERE i.cluster_id = $1 ORDER BY i.id LIMIT $2",
                    params![cid, limit],
                )
                .await?
            }
            None => {
                self.query(
                    "SELECT i.id, i.name, i.owner, i.cluster_id, i.ttl, c.name FROM instances i JOIN clusters c ON c.id = i.cluster_id \
                     ORDER BY i.id LIMIT $1",
                    params![limit],
                )
                .await?
            }
        };
        rows.iter().map(|r| Ok((super::instance(r)?, r.text(5)?))).collect()
    }

    pub async fn add_domain(&self, hostname: &str, instance: i64) -> Result<(), StoreError> {
        let hostname = absolute_name(hostname, "HOSTNAME")?;
        if self.instance(instance).await?.is_none() {
            return Err(StoreError::NotFound(format!("instance {instance}")));
        }
        if let Some(owner) = self
            .query_opt("SELECT instance_id FROM domains WHERE hostname = $1", params![hostname.as_str()])
            .await?
        {
            return Err(StoreError::Conflict(format!(
                "{hostname} already belongs to instance {}",
                owner.int(0)?
            )));
        }
        self.execute(
            "INSERT INTO domains (hostname, instance_id) VALUES ($1, $2)",
            params![hostname, instance],
        )
        .await?;
        Ok(())
    }

    pub async fn remove_domain(&self, hostname: &str) -> Result<(), StoreError> {
        let hostname = absolute_name(hostname, "HOSTNAME")?;
        match self.execute("DELETE FROM domains WHERE hostname = $1", params![hostname.as_str()]).await? {
            0 => Err(StoreError::NotFound(format!("domain {hostname}"))),
            _ => Ok(()),
        }
    }

    /// Sets a DNS-01 answer for `_acme-challenge.<name>`: a TXT value (several may
    /// coexist, as during a renewal with two authorizations), or a CNAME that delegates
    /// validation to another zone (replacing anything else there).
    pub async fn set_acme(&self, challenge: &AcmeChallenge) -> Result<(), StoreError> {
        let name = absolute_name(&challenge.name, "NAME")?;
        let value = match challenge.kind.as_str() {
            "txt" => {
                if challenge.value.is_empty() || challenge.value.len() > 255 {
                    return Err(StoreError::Invalid("--txt: 1 to 255 characters".into()));
                }
                challenge.value.clone()
            }
            "cname" => absolute_name(&challenge.value, "--cname")?,
            other => return Err(StoreError::Invalid(format!("challenge kind {other:?}: use txt or cname"))),
        };
        let mut statements: Vec<Statement> = Vec::new();
        if challenge.kind == "cname" {
            statements.push(("DELETE FROM acme_challenges WHERE name = $1".into(), params![name.as_str()]));
        } else {
            statements.push((
                "DELETE FROM acme_challenges WHERE name = $1 AND kind = 'cname'".into(),
                params![name.as_str()],
            ));
        }
        statements.push((
            "INSERT INTO acme_challenges (name, kind, value, ttl, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name, kind, value) DO UPDATE SET ttl = excluded.ttl, expires_at = excluded.expires_at"
                .into(),
            params![name.as_str(), challenge.kind.as_str(), value, challenge.ttl, challenge.expires_at],
        ));
        self.transaction(statements).await?;
        Ok(())
    }

    /// Removes every challenge answer of `name` (or only one TXT value).
    pub async fn clear_acme(&self, name: &str, value: Option<&str>) -> Result<u64, StoreError> {
        let name = absolute_name(name, "NAME")?;
        let n = match value {
            Some(v) => {
                self.execute(
                    "DELETE FROM acme_challenges WHERE name = $1 AND value = $2",
                    params![name.as_str(), v],
                )
                .await?
            }
            None => {
                self.execute("DELETE FROM acme_challenges WHERE name = $1", params![name.as_str()]).await?
            }
        };
        if n == 0 {
            return Err(StoreError::NotFound(format!("challenge for {name}")));
        }
        Ok(n)
    }
}
