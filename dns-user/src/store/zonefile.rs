//! RFC 1035 zone files in and out: a zone's SOA, apex NS set and static records.

use hickory_proto::{
    rr::{Name, RData, RecordType},
    serialize::txt::Parser,
};

use super::sql::params;
use super::{Database, StoreError, ZoneRow, records::check_cname, sql::Statement};
use crate::{
    model::names,
    protocol::{presentation::presentation, serial::is_newer},
};

impl Database {
    /// Imports an RFC 1035 zone file: the SOA and apex NS set define the zone, every
    /// other record becomes a static record. An existing zone's static records are
    /// replaced; its name rules stay. Returns (apex, records imported).
    pub async fn import_zone(&self, text: &str, origin: Option<&str>) -> Result<(String, usize), StoreError> {
        let origin = origin.map(|o| names::absolute(o, "origin")).transpose()?;
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
        // A CNAME owns its name alone (the apex has the SOA and NS).
        let mut types: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
        types.entry(apex_text.as_str()).or_default().extend(["SOA", "NS"]);
        for (owner, rtype, _, _) in &records {
            let at = types.entry(owner.as_str()).or_default();
            let t = rtype.parse::<RecordType>().map_err(|e| StoreError::Invalid(e.to_string()))?;
            let others: Vec<&str> =
                at.iter().copied().filter(|o| *o != rtype || t == RecordType::CNAME).collect();
            check_cname(owner, t, others).map_err(|e| StoreError::Invalid(format!("zone file: {e}")))?;
            at.push(rtype.as_str());
        }
        if ns.is_empty() {
            return Err(StoreError::Invalid(format!("zone file: no NS records at {apex}")));
        }
        let ns_ttl = ns[0].1;
        let count = records.len();
        let current =
            self.select_one::<ZoneRow>("FROM zones WHERE apex = $1", params![apex_text.as_str()]).await?;
        let head = (
            soa.mname.to_lowercase().to_ascii(),
            soa.rname.to_lowercase().to_ascii(),
            soa.refresh.max(0) as u32,
            soa.retry.max(0) as u32,
            soa.expire.max(0) as u32,
            soa.minimum,
            soa_ttl,
            ns_ttl,
        );
        if let Some(z) = &current {
            let stored_head = (
                z.soa_mname.clone(),
                z.soa_rname.clone(),
                z.soa_refresh,
                z.soa_retry,
                z.soa_expire,
                z.soa_minimum,
                z.soa_ttl,
                z.ns_ttl,
            );
            let mut stored_ns = self.zone_ns(z.id).await?;
            let mut new_ns: Vec<String> = ns.iter().map(|(n, _)| n.clone()).collect();
            stored_ns.sort();
            new_ns.sort();
            let mut stored: Vec<(String, String, u32, String)> =
                self.records(z.id).await?.into_iter().map(|r| (r.name, r.rtype, r.ttl, r.data)).collect();
            let mut new = records.clone();
            stored.sort();
            new.sort();
            if stored_head == head && z.soa_serial == soa.serial && stored_ns == new_ns && stored == new {
                // Nothing changed: no write, no new serial (reloads re-import zone files).
                return Ok((apex_text, count));
            }
        }
        // The file's serial when it is newer than ours (or the zone is new); otherwise
        // ours, bumped by the transaction: a serial never goes back.
        let (serial, keep_serial) = match &current {
            Some(z) if !is_newer(soa.serial, z.soa_serial) => (z.soa_serial, false),
            _ => (soa.serial, true),
        };
        let (mname, rname, refresh, retry, expire, minimum, soa_ttl, ns_ttl) = head;
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
                    mname,
                    rname,
                    serial,
                    refresh,
                    retry,
                    expire,
                    minimum,
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
        for (owner, rtype, ttl, rdata) in records {
            statements.push((
                "INSERT INTO records (zone_id, name, rtype, ttl, rdata) SELECT id, $1, $2, $3, $4 FROM zones WHERE apex = $5"
                    .into(),
                params![owner, rtype, ttl, rdata, apex_text.as_str()],
            ));
        }
        if keep_serial {
            self.transaction_keeping_serials(statements).await?;
        } else {
            self.transaction(statements).await?;
        }
        Ok((apex_text, count))
    }

    /// The zone's data as an RFC 1035 zone file: SOA, NS and static records (names that
    /// rules derive from instances are not zone data and are not exported).
    pub async fn export_zone(&self, apex: &str) -> Result<String, StoreError> {
        let id = self.zone_id(apex).await?;
        let z = self.zone_row(id).await?;
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
            out += &format!("{} {} IN {} {}\n", r.name, r.ttl, r.rtype, r.data);
        }
        Ok(out)
    }
}
