//! A zone's static records, in presentation format (validated as the server will parse
//! them).

use std::str::FromStr as _;

use hickory_proto::rr::{Name, RData, RecordType};

use super::sql::params;
use super::{Database, RecordRow, StoreError, sql::Value};
use crate::model::names;
use crate::protocol::presentation::presentation;

/// A record type from user input, upper-cased; SOA and OPT come from the zone itself.
fn record_type(rtype: &str) -> Result<(String, RecordType), StoreError> {
    let text = rtype.to_ascii_uppercase();
    let t = RecordType::from_str(&text)
        .map_err(|e| StoreError::Invalid(format!("record type {rtype:?} is not a type: {e}")))?;
    if matches!(t, RecordType::SOA | RecordType::OPT) {
        return Err(StoreError::Invalid(format!("{text} records come from the zone definition (zone set)")));
    }
    Ok((text, t))
}

/// RFC 1034 section 3.6.2 (and RFC 2181 section 10.1): a name with a CNAME has no
/// other data, and one CNAME. `existing` are the types already at `owner`.
pub fn check_cname<'a>(
    owner: &str,
    adding: RecordType,
    existing: impl IntoIterator<Item = &'a str>,
) -> Result<(), StoreError> {
    for other in existing {
        let other_is_cname = other.eq_ignore_ascii_case("CNAME");
        if adding == RecordType::CNAME || other_is_cname {
            let why = if adding == RecordType::CNAME && other_is_cname {
                "a name has at most one CNAME".to_owned()
            } else if adding == RecordType::CNAME {
                format!("it already has {other} data, and a CNAME cannot share its name with other records")
            } else {
                format!("it has a CNAME, which cannot share its name with {adding} records")
            };
            return Err(StoreError::Invalid(format!(
                "{owner} {adding}: {why} (RFC 1034 section 3.6.2); remove the other record(s) first"
            )));
        }
    }
    Ok(())
}

impl Database {
    /// A zone's static records, by name, type and insertion.
    pub async fn records(&self, zone_id: i64) -> Result<Vec<RecordRow>, StoreError> {
        self.select("FROM records WHERE zone_id = $1 ORDER BY name, rtype, id", params![zone_id]).await
    }

    /// A zone's static records, all or those at `name`.
    pub async fn list_records(&self, apex: &str, name: Option<&str>) -> Result<Vec<RecordRow>, StoreError> {
        let zone = self.zone_id(apex).await?;
        match name {
            None => self.records(zone).await,
            Some(name) => {
                let owner = names::absolute(name, "record name")?;
                self.select(
                    "FROM records WHERE zone_id = $1 AND name = $2 ORDER BY rtype, id",
                    params![zone, owner],
                )
                .await
            }
        }
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
        let owner = names::absolute(name, "record name")?;
        let zone_apex = names::absolute(apex, "zone")?;
        let inside = Name::from_ascii(&zone_apex)
            .map_err(|e| StoreError::Invalid(e.to_string()))?
            .zone_of(&Name::from_ascii(&owner).map_err(|e| StoreError::Invalid(e.to_string()))?);
        if !inside {
            return Err(StoreError::Invalid(format!("record name {owner} is outside zone {zone_apex}")));
        }
        let (rtype, t) = record_type(rtype)?;
        let parsed = RData::try_from_str(t, rdata).map_err(|e| {
            StoreError::Invalid(format!("record data {rdata:?} is not valid {rtype} data: {e}"))
        })?;
        let existing: Vec<String> = self
            .query(
                "SELECT DISTINCT rtype FROM records WHERE zone_id = $1 AND name = $2",
                params![zone, owner.as_str()],
            )
            .await?
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, _>>()?;
        let at_apex = owner == zone_apex;
        check_cname(&owner, t, existing.iter().map(String::as_str).chain(at_apex.then_some("SOA")))?;
        // Stored in the one presentation form that reads back (TXT quoting, SVCB lists).
        let rdata = presentation(&parsed);
        let ttl: Value = match ttl {
            Some(t) => t.into(),
            None => self.zone_row(zone).await?.default_ttl.into(),
        };
        self.execute(
            "INSERT INTO records (zone_id, name, rtype, ttl, rdata) VALUES ($1, $2, $3, $4, $5)",
            vec![zone.into(), owner.into(), rtype.into(), ttl, rdata.into()],
        )
        .await?;
        Ok(())
    }

    /// Removes the static records at `name` of `rtype` (only those with `rdata`, if
    /// given); returns how many.
    pub async fn remove_record(
        &self,
        apex: &str,
        name: &str,
        rtype: &str,
        rdata: Option<&str>,
    ) -> Result<u64, StoreError> {
        let zone = self.zone_id(apex).await?;
        let owner = names::absolute(name, "record name")?;
        let (rtype, _) = record_type(rtype)?;
        let removed = match rdata {
            Some(data) => {
                self.execute(
                    "DELETE FROM records WHERE zone_id = $1 AND name = $2 AND rtype = $3 AND rdata = $4",
                    params![zone, owner.as_str(), rtype.as_str(), data],
                )
                .await?
            }
            None => {
                self.execute(
                    "DELETE FROM records WHERE zone_id = $1 AND name = $2 AND rtype = $3",
                    params![zone, owner.as_str(), rtype.as_str()],
                )
                .await?
            }
        };
        if removed == 0 {
            let what = rdata.map_or_else(String::new, |d| format!(" {d}"));
            return Err(StoreError::NotFound(format!("record {owner} {rtype}{what} in zone {apex}")));
        }
        Ok(removed)
    }

    /// The static records at `name` (lower-case, absolute): (type, TTL).
    pub async fn record_ttls_at(&self, name: &str) -> Result<Vec<(String, u32)>, StoreError> {
        let rows = self
            .query("SELECT rtype, ttl FROM records WHERE name = $1 ORDER BY rtype, id", params![name])
            .await?;
        rows.iter().map(|r| Ok((r.text(0)?, r.u32(1)?))).collect()
    }

    pub async fn set_record_ttl(&self, name: &str, ttl: u32) -> Result<u64, StoreError> {
        self.execute("UPDATE records SET ttl = $1 WHERE name = $2", params![ttl, name]).await
    }
}
