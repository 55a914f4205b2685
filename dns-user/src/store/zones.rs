//! Zones: apex, SOA fields and name servers; their name rules ([`super::rules`]),
//! static records ([`super::records`]) and zone files ([`super::zonefile`]) have their
//! own files.

use serde::{Deserialize, Serialize};

use super::sql::params;
use super::{
    Database, RuleRow, StoreError, ZoneRow,
    sql::{Statement, Value},
};
use crate::model::{names, rule::RuleSpec, time::unix_now};

/// An absolute, lower-cased domain name from user input; errors name `what` it is.
fn absolute_name(input: &str, what: &str) -> Result<String, StoreError> {
    Ok(names::absolute(input, what)?)
}

/// A new zone.
#[derive(Clone, Debug)]
pub struct NewZone {
    pub apex: String,
    pub soa_mname: String,
    pub soa_rname: String,
    pub ns: Vec<String>,
    pub soa_minimum: u32,
    /// TTL of the SOA and NS records, and the default TTL of static records.
    pub ttl: u32,
    pub rules: Vec<RuleSpec>,
}

impl NewZone {
    /// A zone with the SOA's defaults for what is not given: the first name server as
    /// MNAME, `hostmaster.APEX` as RNAME.
    pub fn new(
        apex: &str,
        ns: Vec<String>,
        mname: Option<String>,
        rname: Option<String>,
        soa_minimum: u32,
        ttl: u32,
        rules: Vec<RuleSpec>,
    ) -> Self {
        Self {
            soa_mname: mname.or_else(|| ns.first().cloned()).unwrap_or_default(),
            soa_rname: rname.unwrap_or_else(|| format!("hostmaster.{}", apex.trim_end_matches('.'))),
            apex: apex.to_owned(),
            ns,
            soa_minimum,
            ttl,
            rules,
        }
    }
}

/// Changes to a zone's SOA fields and name servers; what is absent stays (also the
/// HTTP API's body of `PATCH /v1/zones/{zone}`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneUpdate {
    pub soa_mname: Option<String>,
    pub soa_rname: Option<String>,
    /// TTL of the SOA and NS records, and the default TTL of static records.
    pub ttl: Option<u32>,
    pub soa_minimum: Option<u32>,
    pub soa_refresh: Option<u32>,
    pub soa_retry: Option<u32>,
    pub soa_expire: Option<u32>,
    #[serde(default)]
    pub add_ns: Vec<String>,
    #[serde(default)]
    pub remove_ns: Vec<String>,
}

/// A zone with its name servers, rules and how much it holds.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ZoneInfo {
    #[serde(flatten)]
    pub zone: ZoneRow,
    pub ns: Vec<String>,
    pub rules: Vec<RuleRow>,
    /// Static records (apex SOA and NS not counted).
    pub records: i64,
}

impl Database {
    pub async fn zone_id(&self, apex: &str) -> Result<i64, StoreError> {
        let apex = absolute_name(apex, "zone")?;
        self.query_opt("SELECT id FROM zones WHERE apex = $1", params![apex.as_str()])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("zone {apex} (see `instadns zone list`)")))?
            .int(0)
    }

    pub async fn add_zone(&self, zone: &NewZone) -> Result<i64, StoreError> {
        let apex = absolute_name(&zone.apex, "zone apex")?;
        if zone.ns.is_empty() {
            return Err(StoreError::Invalid(format!("zone {apex} needs at least one name server")));
        }
        let mname = absolute_name(&zone.soa_mname, "SOA MNAME")?;
        let rname = absolute_name(&zone.soa_rname, "SOA RNAME")?;
        let ns = zone.ns.iter().map(|n| absolute_name(n, "name server")).collect::<Result<Vec<_>, _>>()?;
        if self.exists("SELECT 1 FROM zones WHERE apex = $1", params![apex.as_str()]).await? {
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
        for rule in &zone.rules {
            statements.push(super::rules::insert_rule(&apex, rule));
        }
        let results = self.transaction(statements).await?;
        results[0].first().ok_or_else(|| StoreError::Invalid("zone insert returned no id".into()))?.int(0)
    }

    /// Changes a zone's SOA fields and name servers, in one transaction.
    pub async fn set_zone(&self, apex: &str, update: &ZoneUpdate) -> Result<(), StoreError> {
        let id = self.zone_id(apex).await?;
        let mut statements: Vec<Statement> = Vec::new();
        let mut set = |column: &str, value: Value| {
            statements
                .push((format!("UPDATE zones SET {column} = $1 WHERE id = $2"), vec![value, id.into()]));
        };
        if let Some(m) = &update.soa_mname {
            set("soa_mname", absolute_name(m, "SOA MNAME")?.into());
        }
        if let Some(r) = &update.soa_rname {
            set("soa_rname", absolute_name(r, "SOA RNAME")?.into());
        }
        if let Some(ttl) = update.ttl {
            for column in ["soa_ttl", "ns_ttl", "default_ttl"] {
                set(column, ttl.into());
            }
        }
        for (column, value) in [
            ("soa_minimum", update.soa_minimum),
            ("soa_refresh", update.soa_refresh),
            ("soa_retry", update.soa_retry),
            ("soa_expire", update.soa_expire),
        ] {
            if let Some(v) = value {
                set(column, v.into());
            }
        }
        for n in &update.add_ns {
            statements.push((
                "INSERT INTO zone_ns (zone_id, nsdname) VALUES ($1, $2) ON CONFLICT DO NOTHING".into(),
                params![id, absolute_name(n, "name server")?],
            ));
        }
        let mut remaining = self.zone_ns(id).await?;
        for n in &update.remove_ns {
            let n = absolute_name(n, "name server")?;
            if !remaining.contains(&n) {
                return Err(StoreError::NotFound(format!("name server {n} of zone {apex}")));
            }
            remaining.retain(|r| *r != n);
            statements
                .push(("DELETE FROM zone_ns WHERE zone_id = $1 AND nsdname = $2".into(), params![id, n]));
        }
        if remaining.is_empty() && update.add_ns.is_empty() {
            return Err(StoreError::Invalid(format!("zone {apex} needs at least one name server")));
        }
        if !statements.is_empty() {
            self.transaction(statements).await?;
        }
        Ok(())
    }

    /// Removes a zone with its name servers, rules and static records. A zone that
    /// holds rules, records or custom domains is removed only with `force` (the custom
    /// domains inside it go too, in the same transaction); otherwise the error names what
    /// it holds.
    pub async fn remove_zone(&self, apex: &str, force: bool) -> Result<(), StoreError> {
        let id = self.zone_id(apex).await?;
        let apex = absolute_name(apex, "zone")?;
        let rules = self.count("SELECT COUNT(*) FROM name_rules WHERE zone_id = $1", params![id]).await?;
        let records = self.count("SELECT COUNT(*) FROM records WHERE zone_id = $1", params![id]).await?;
        let domains = self.domains_in_zone(&apex).await?;
        if !force && (rules > 0 || records > 0 || !domains.is_empty()) {
            let mut held = Vec::new();
            for (n, what) in [
                (rules, "name rule(s)"),
                (records, "static record(s)"),
                (domains.len() as i64, "custom domain(s)"),
            ] {
                if n > 0 {
                    held.push(format!("{n} {what}"));
                }
            }
            return Err(StoreError::Conflict(format!(
                "zone {apex} still holds {}; remove them first or use --force to remove them with the zone",
                held.join(", ")
            )));
        }
        let mut statements: Vec<Statement> = domains
            .into_iter()
            .map(|d| ("DELETE FROM domains WHERE hostname = $1".to_owned(), params![d]))
            .collect();
        statements.push(("DELETE FROM zones WHERE id = $1".into(), params![id]));
        self.transaction(statements).await?;
        Ok(())
    }

    /// The custom domains whose closest zone is `apex` (absolute, lower-case).
    pub async fn domains_in_zone(&self, apex: &str) -> Result<Vec<String>, StoreError> {
        let below = self
            .query(
                "SELECT hostname FROM domains WHERE hostname = $1 OR (length(hostname) > length($1) \
                 AND substr(hostname, length(hostname) - length($1)) = '.' || $1) ORDER BY hostname",
                params![apex],
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<Vec<_>, _>>()?;
        let apexes = self.zone_apexes().await?;
        Ok(below.into_iter().filter(|h| closest_zone(h, &apexes) == Some(apex)).collect())
    }

    /// Every zone apex (absolute, lower-case).
    pub async fn zone_apexes(&self) -> Result<Vec<String>, StoreError> {
        self.query("SELECT apex FROM zones ORDER BY apex", vec![]).await?.iter().map(|r| r.text(0)).collect()
    }

    /// The zone a name lies in (its apex, absolute and lower-case), if we serve one.
    pub async fn zone_of_name(&self, name: &str) -> Result<Option<String>, StoreError> {
        let name = crate::model::names::absolute(name, "name")?;
        let apexes = self.zone_apexes().await?;
        Ok(super::zones::closest_zone(&name, &apexes).map(str::to_owned))
    }

    pub(super) async fn zone_ns(&self, zone_id: i64) -> Result<Vec<String>, StoreError> {
        self.query("SELECT nsdname FROM zone_ns WHERE zone_id = $1 ORDER BY nsdname", params![zone_id])
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect()
    }

    /// Every zone with its name servers, rules and record count, by apex.
    pub async fn list_zones(&self) -> Result<Vec<ZoneInfo>, StoreError> {
        let zones = self.select::<ZoneRow>("FROM zones ORDER BY apex", vec![]).await?;
        self.zone_infos(zones).await
    }

    pub async fn show_zone(&self, apex: &str) -> Result<ZoneInfo, StoreError> {
        let id = self.zone_id(apex).await?;
        let zones = self.select::<ZoneRow>("FROM zones WHERE id = $1", params![id]).await?;
        self.zone_infos(zones).await?.pop().ok_or_else(|| StoreError::NotFound(format!("zone {apex}")))
    }

    async fn zone_infos(&self, zones: Vec<ZoneRow>) -> Result<Vec<ZoneInfo>, StoreError> {
        let ns = self.select::<super::NsRow>("FROM zone_ns ORDER BY zone_id, nsdname", vec![]).await?;
        let rules = self.select::<RuleRow>("FROM name_rules ORDER BY id", vec![]).await?;
        let counts = self.query("SELECT zone_id, COUNT(*) FROM records GROUP BY zone_id", vec![]).await?;
        let mut records = std::collections::HashMap::new();
        for r in &counts {
            records.insert(r.int(0)?, r.int(1)?);
        }
        Ok(zones
            .into_iter()
            .map(|zone| ZoneInfo {
                ns: ns.iter().filter(|n| n.zone_id == zone.id).map(|n| n.nsdname.clone()).collect(),
                rules: rules.iter().filter(|r| r.zone_id == zone.id).cloned().collect(),
                records: records.get(&zone.id).copied().unwrap_or(0),
                zone,
            })
            .collect())
    }

    /// A zone's apex data by id.
    pub async fn zone_row(&self, id: i64) -> Result<ZoneRow, StoreError> {
        self.select_one("FROM zones WHERE id = $1", params![id])
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("zone {id}")))
    }
}

/// The apex among `apexes` that is the longest suffix of `name` (all absolute, lower-case).
pub fn closest_zone<'a>(name: &str, apexes: &'a [String]) -> Option<&'a str> {
    apexes
        .iter()
        .filter(|apex| name == apex.as_str() || name.ends_with(&format!(".{apex}")))
        .max_by_key(|apex| apex.len())
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_zone_is_the_longest_suffix_on_a_label_boundary() {
        let apexes = vec!["example.org.".to_owned(), "sub.example.org.".to_owned()];
        assert_eq!(closest_zone("a.sub.example.org.", &apexes), Some("sub.example.org."));
        assert_eq!(closest_zone("a.example.org.", &apexes), Some("example.org."));
        assert_eq!(closest_zone("xexample.org.", &apexes), None);
        assert_eq!(closest_zone("example.org.", &apexes), Some("example.org."));
    }
}
