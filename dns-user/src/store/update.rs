//! RFC 2136 dynamic updates applied to a zone's static records and ACME challenges: the
//! prerequisites checked and the updates applied in one transaction (serials bumped
//! once), or nothing at all.
//!
//! Where an RRset lives: at `_acme-challenge.NAME`, a TXT value of one printable
//! character-string and a CNAME are ACME challenges (expiring like those of `instadns
//! acme set --expires`); everything else is a static record. Prerequisites at an ACME
//! name see both tables. Records are compared in the presentation form the records
//! table stores.

use super::{
    Database, StoreError,
    sql::{Statement, Value},
};

/// A prerequisite on the stored data (RFC 2136 section 2.4). Owners are absolute,
/// lower-case; types upper-case mnemonics; data in presentation form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    NameInUse { owner: String },
    NameNotInUse { owner: String },
    RrsetExists { owner: String, rtype: String },
    RrsetAbsent { owner: String, rtype: String },
    RrsetEquals { owner: String, rtype: String, rdata: Vec<String> },
}

/// An update of the stored data (RFC 2136 section 2.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    Add { owner: String, rtype: String, ttl: u32, rdata: String },
    DeleteRrset { owner: String, rtype: String },
    DeleteName { owner: String },
    DeleteRecord { owner: String, rtype: String, rdata: String },
}

/// One UPDATE message for one zone.
#[derive(Clone, Debug)]
pub struct ZoneUpdate {
    pub zone_id: i64,
    pub conditions: Vec<Condition>,
    pub writes: Vec<Write>,
    /// Unix time now: which challenge values still count.
    pub now: i64,
    /// When challenge values added by this update stop being answered.
    pub acme_expires_at: i64,
}

/// What became of an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Every condition held and the writes were applied; how many rows they changed.
    Applied { rows: u64 },
    /// Condition `i` did not hold: nothing was written.
    ConditionFailed(usize),
}

const ACME_LABEL: &str = "_acme-challenge.";

/// The validated name of an `_acme-challenge.NAME` owner.
fn acme_name(owner: &str) -> Option<&str> {
    owner.strip_prefix(ACME_LABEL).filter(|rest| !rest.is_empty())
}

/// A TXT value the ACME table can hold: one quoted character-string of printable ASCII
/// with nothing escaped (what ACME key authorization digests are).
fn acme_txt_value(rdata: &str) -> Option<&str> {
    let inner = rdata.strip_prefix('"')?.strip_suffix('"')?;
    let plain = (1..=super::acme::MAX_TXT_LEN).contains(&inner.len())
        && inner.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\');
    plain.then_some(inner)
}

/// Types whose presentation form holds only names and numbers: compared without case.
fn case_insensitive(rtype: &str) -> bool {
    matches!(rtype, "A" | "AAAA" | "CNAME" | "DNAME" | "NS" | "PTR" | "MX" | "SRV")
}

/// Collects SQL parameters, numbering them.
#[derive(Default)]
struct Params(Vec<Value>);

impl Params {
    fn add(&mut self, v: impl Into<Value>) -> String {
        self.0.push(v.into());
        format!("${}", self.0.len())
    }
}

/// The presentation forms of the RRset (`rtype` Some) or of every record (None) at
/// `owner`, as a subquery with one column `v`.
fn rrset_rows(p: &mut Params, zone_id: i64, now: i64, owner: &str, rtype: Option<&str>) -> String {
    let (zone, name) = (p.add(zone_id), p.add(owner));
    let mut parts = vec![match rtype {
        Some(t) => {
            let t = p.add(t);
            format!("SELECT rdata AS v FROM records WHERE zone_id = {zone} AND name = {name} AND rtype = {t}")
        }
        None => format!("SELECT rdata AS v FROM records WHERE zone_id = {zone} AND name = {name}"),
    }];
    if let Some(validated) = acme_name(owner) {
        let (validated, now) = (p.add(validated), p.add(now));
        let live_txt = format!(
            "SELECT '\"' || value || '\"' AS v FROM acme_challenges WHERE name = {validated} AND kind = 'txt' \
             AND (expires_at IS NULL OR expires_at > {now})"
        );
        let cname =
            format!("SELECT value AS v FROM acme_challenges WHERE name = {validated} AND kind = 'cname'");
        match rtype {
            Some("TXT") => parts.push(live_txt),
            Some("CNAME") => parts.push(cname),
            Some(_) => {}
            None => parts.extend([live_txt, cname]),
        }
    }
    parts.join(" UNION ALL ")
}

/// The guard query of a condition: one integer, non-zero when it holds.
fn guard(zone_id: i64, now: i64, condition: &Condition) -> Statement {
    let mut p = Params::default();
    let count = |p: &mut Params, owner: &str, rtype: Option<&str>| {
        format!("(SELECT COUNT(*) FROM ({}) s)", rrset_rows(p, zone_id, now, owner, rtype))
    };
    let sql = match condition {
        Condition::NameInUse { owner } => format!("{} > 0", count(&mut p, owner, None)),
        Condition::NameNotInUse { owner } => format!("{} = 0", count(&mut p, owner, None)),
        Condition::RrsetExists { owner, rtype } => format!("{} > 0", count(&mut p, owner, Some(rtype))),
        Condition::RrsetAbsent { owner, rtype } => format!("{} = 0", count(&mut p, owner, Some(rtype))),
        Condition::RrsetEquals { owner, rtype, rdata } => {
            let fold = |x: &str| if case_insensitive(rtype) { format!("lower({x})") } else { x.to_owned() };
            let mut wanted: Vec<String> = rdata
                .iter()
                .map(|d| if case_insensitive(rtype) { d.to_ascii_lowercase() } else { d.clone() })
                .collect();
            wanted.sort();
            wanted.dedup();
            let list = wanted.iter().map(|d| p.add(d.as_str())).collect::<Vec<_>>().join(", ");
            let rows = rrset_rows(&mut p, zone_id, now, owner, Some(rtype));
            let v = fold("s.v");
            format!(
                "(SELECT COUNT(*) FROM ({rows}) s WHERE {v} NOT IN ({list})) = 0 \
                 AND (SELECT COUNT(DISTINCT {v}) FROM ({rows}) s WHERE {v} IN ({list})) = {}",
                wanted.len()
            )
        }
    };
    (format!("SELECT CAST(CASE WHEN {sql} THEN 1 ELSE 0 END AS BIGINT)"), p.0)
}

/// The statements of one write (RFC 2136 section 3.4.2), in order. A CNAME and other
/// data never share a name: an add that would break that is ignored (section 3.4.2.2),
/// an add of a CNAME where one is replaces it, and an add of a record that is there
/// only updates the RRset's TTL.
fn statements(update: &ZoneUpdate, write: &Write, out: &mut Vec<Statement>) {
    let zone_id = update.zone_id;
    match write {
        Write::Add { owner, rtype, ttl, rdata } => {
            if let Some(validated) = acme_name(owner) {
                match (rtype.as_str(), acme_txt_value(rdata)) {
                    ("TXT", Some(value)) => return add_acme_txt(update, owner, validated, value, *ttl, out),
                    ("CNAME", _) => return add_acme_cname(update, owner, validated, rdata, *ttl, out),
                    _ => {}
                }
            }
            // Each statement numbers its own parameters: PostgreSQL refuses unused ones.
            let acme_blocks = |p: &mut Params| {
                acme_name(owner).map_or_else(String::new, |validated| {
                    let v = p.add(validated);
                    let kinds = if rtype == "CNAME" { "'txt', 'cname'" } else { "'cname'" };
                    format!(" AND NOT EXISTS (SELECT 1 FROM acme_challenges WHERE name = {v} AND kind IN ({kinds}))")
                })
            };
            if rtype == "CNAME" {
                let mut p = Params::default();
                let (z, n, d) = (p.add(zone_id), p.add(owner.as_str()), p.add(rdata.as_str()));
                let acme = acme_blocks(&mut p);
                out.push((
                    format!(
                        "DELETE FROM records WHERE zone_id = {z} AND name = {n} AND rtype = 'CNAME' AND rdata <> {d} \
                         AND NOT EXISTS (SELECT 1 FROM records WHERE zone_id = {z} AND name = {n} AND rtype <> 'CNAME'){acme}"
                    ),
                    p.0,
                ));
            }
            let mut p = Params::default();
            let (z, n, t, l, d) = (
                p.add(zone_id),
                p.add(owner.as_str()),
                p.add(rtype.as_str()),
                p.add(*ttl),
                p.add(rdata.as_str()),
            );
            let acme = acme_blocks(&mut p);
            let blocked = if rtype == "CNAME" {
                // Other data, or this very CNAME.
                format!("rtype <> 'CNAME' OR rdata = {d}")
            } else {
                format!("rtype = 'CNAME' OR (rtype = {t} AND rdata = {d})")
            };
            out.push((
                format!(
                    "INSERT INTO records (zone_id, name, rtype, ttl, rdata) \
                     SELECT CAST({z} AS BIGINT), CAST({n} AS TEXT), CAST({t} AS TEXT), CAST({l} AS BIGINT), CAST({d} AS TEXT) \
                     WHERE NOT EXISTS (SELECT 1 FROM records WHERE zone_id = {z} AND name = {n} AND ({blocked})){acme}"
                ),
                p.0,
            ));
            // One TTL per RRset (RFC 2181 section 5.2): the newest.
            let mut p = Params::default();
            let (l, z, n, t) = (p.add(*ttl), p.add(zone_id), p.add(owner.as_str()), p.add(rtype.as_str()));
            out.push((
                format!("UPDATE records SET ttl = {l} WHERE zone_id = {z} AND name = {n} AND rtype = {t} AND ttl <> {l}"),
                p.0,
            ));
        }
        Write::DeleteRrset { owner, rtype } => {
            let mut p = Params::default();
            let (z, n, t) = (p.add(zone_id), p.add(owner.as_str()), p.add(rtype.as_str()));
            out.push((
                format!("DELETE FROM records WHERE zone_id = {z} AND name = {n} AND rtype = {t}"),
                p.0,
            ));
            if let Some(validated) = acme_name(owner)
                && matches!(rtype.as_str(), "TXT" | "CNAME")
            {
                let kind = if rtype == "TXT" { "txt" } else { "cname" };
                out.push((
                    "DELETE FROM acme_challenges WHERE name = $1 AND kind = $2".into(),
                    vec![validated.into(), kind.into()],
                ));
            }
        }
        Write::DeleteName { owner } => {
            out.push((
                "DELETE FROM records WHERE zone_id = $1 AND name = $2".into(),
                vec![zone_id.into(), owner.as_str().into()],
            ));
            if let Some(validated) = acme_name(owner) {
                out.push(("DELETE FROM acme_challenges WHERE name = $1".into(), vec![validated.into()]));
            }
        }
        Write::DeleteRecord { owner, rtype, rdata } => {
            let (column, value) = if case_insensitive(rtype) {
                ("lower(rdata)", rdata.to_ascii_lowercase())
            } else {
                ("rdata", rdata.clone())
            };
            out.push((
                format!(
                    "DELETE FROM records WHERE zone_id = $1 AND name = $2 AND rtype = $3 AND {column} = $4"
                ),
                vec![zone_id.into(), owner.as_str().into(), rtype.as_str().into(), value.into()],
            ));
            if let Some(validated) = acme_name(owner) {
                match (rtype.as_str(), acme_txt_value(rdata)) {
                    ("TXT", Some(v)) => out.push((
                        "DELETE FROM acme_challenges WHERE name = $1 AND kind = 'txt' AND value = $2".into(),
                        vec![validated.into(), v.into()],
                    )),
                    ("CNAME", _) => out.push((
                        "DELETE FROM acme_challenges WHERE name = $1 AND kind = 'cname' AND lower(value) = $2".into(),
                        vec![validated.into(), rdata.to_ascii_lowercase().into()],
                    )),
                    _ => {}
                }
            }
        }
    }
}

/// A challenge TXT value: ignored under a CNAME; a value that is there gets its expiry
/// renewed.
fn add_acme_txt(
    update: &ZoneUpdate,
    owner: &str,
    validated: &str,
    value: &str,
    ttl: u32,
    out: &mut Vec<Statement>,
) {
    let mut p = Params::default();
    let (n, v, l, e, z, o) = (
        p.add(validated),
        p.add(value),
        p.add(ttl),
        p.add(update.acme_expires_at),
        p.add(update.zone_id),
        p.add(owner),
    );
    out.push((
        format!(
            "INSERT INTO acme_challenges (name, kind, value, ttl, expires_at) \
             SELECT CAST({n} AS TEXT), 'txt', CAST({v} AS TEXT), CAST({l} AS BIGINT), CAST({e} AS BIGINT) \
             WHERE NOT EXISTS (SELECT 1 FROM acme_challenges WHERE name = {n} AND kind = 'cname') \
               AND NOT EXISTS (SELECT 1 FROM records WHERE zone_id = {z} AND name = {o} AND rtype = 'CNAME') \
             ON CONFLICT (name, kind, value) DO UPDATE SET ttl = excluded.ttl, expires_at = excluded.expires_at"
        ),
        p.0,
    ));
    out.push((
        "UPDATE acme_challenges SET ttl = $1 WHERE name = $2 AND kind = 'txt' AND ttl <> $1".into(),
        vec![ttl.into(), validated.into()],
    ));
}

/// A challenge CNAME (validation delegated): ignored where other data is, replacing
/// another CNAME. Expired TXT values do not count as data.
fn add_acme_cname(
    update: &ZoneUpdate,
    owner: &str,
    validated: &str,
    target: &str,
    ttl: u32,
    out: &mut Vec<Statement>,
) {
    let target = target.to_ascii_lowercase();
    out.push((
        "DELETE FROM acme_challenges WHERE name = $1 AND kind = 'txt' AND expires_at IS NOT NULL AND expires_at <= $2"
            .into(),
        vec![validated.into(), update.now.into()],
    ));
    let no_other_data = |p: &mut Params, n: &str| {
        let (z, o) = (p.add(update.zone_id), p.add(owner));
        format!(
            "NOT EXISTS (SELECT 1 FROM acme_challenges WHERE name = {n} AND kind = 'txt') \
             AND NOT EXISTS (SELECT 1 FROM records WHERE zone_id = {z} AND name = {o})"
        )
    };
    let mut p = Params::default();
    let (n, v) = (p.add(validated), p.add(target.as_str()));
    let free = no_other_data(&mut p, &n);
    out.push((
        format!(
            "DELETE FROM acme_challenges WHERE name = {n} AND kind = 'cname' AND value <> {v} AND {free}"
        ),
        p.0,
    ));
    let mut p = Params::default();
    let (n, v, l) = (p.add(validated), p.add(target.as_str()), p.add(ttl));
    let free = no_other_data(&mut p, &n);
    out.push((
        format!(
            "INSERT INTO acme_challenges (name, kind, value, ttl, expires_at) \
             SELECT CAST({n} AS TEXT), 'cname', CAST({v} AS TEXT), CAST({l} AS BIGINT), NULL \
             WHERE {free} AND NOT EXISTS (SELECT 1 FROM acme_challenges WHERE name = {n} AND kind = 'cname') \
             ON CONFLICT (name, kind, value) DO UPDATE SET ttl = excluded.ttl"
        ),
        p.0,
    ));
}

impl Database {
    /// Applies an update: its conditions checked and its writes made in one transaction
    /// (updates of one zone take turns), or nothing.
    pub async fn apply_update(&self, update: &ZoneUpdate) -> Result<UpdateOutcome, StoreError> {
        let guards = update.conditions.iter().map(|c| guard(update.zone_id, update.now, c)).collect();
        let mut writes = Vec::new();
        for write in &update.writes {
            statements(update, write, &mut writes);
        }
        Ok(match self.guarded_write(update.zone_id, guards, writes).await? {
            Ok(counts) => UpdateOutcome::Applied { rows: counts.iter().sum() },
            Err(index) => UpdateOutcome::ConditionFailed(index),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_values_are_plain_quoted_strings_at_acme_names() {
        assert_eq!(acme_name("_acme-challenge.www.example.org."), Some("www.example.org."));
        assert_eq!(acme_name("www.example.org."), None);
        assert_eq!(acme_txt_value("\"abc-DEF_123\""), Some("abc-DEF_123"));
        assert_eq!(acme_txt_value("\"a\" \"b\""), None, "two strings");
        assert_eq!(acme_txt_value("\"a\\\"b\""), None, "escaped quote");
        assert_eq!(acme_txt_value("\"\""), None, "empty");
    }
}
