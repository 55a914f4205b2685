//! RFC 2136 dynamic updates and RFC 1996 NOTIFY, in the handler: who may update what
//! (TSIG and the key's scope), which zone, and what the update means for our data.
//! The store applies it atomically; the change log carries it to every node's maps
//! like any other write.
//!
//! What an update may touch: the zone's static records and the ACME challenges at
//! `_acme-challenge` names. Not the SOA or the apex NS (the zone definition: `instadns
//! zone set`), and not the names the platform makes (rule-made names, custom domains):
//! those follow the instances, and a record there would shadow them. Prerequisites see
//! every name the zone answers.

use std::{net::IpAddr, sync::atomic::Ordering};

use dns_common::wire::{CLASS_IN, rcode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{
    handler::{Handler, sign_response},
    stats::TsigOutcome,
};
use crate::{
    model::{key::Operation, time::unix_now},
    protocol::{
        presentation::presentation,
        update::{Change, Prerequisite, Update, notify_reply, parse_update},
    },
    resolution::{Zone, keys::Key},
    store::{
        Store,
        update::{Condition, UpdateOutcome, Write, ZoneUpdate},
    },
};

/// How long a challenge TXT value added by an update is answered if the client never
/// deletes it (certbot and lego do, right after validation).
pub const ACME_UPDATE_LIFETIME_S: i64 = 24 * 3600;

/// A prerequisite decided before the database is asked, or the condition to ask.
enum Check {
    Known(bool),
    Stored(Condition),
}

impl<S: Store> Handler<S> {
    /// An UPDATE (RFC 2136 section 3): unsigned ones are refused; a verified one is
    /// checked against its key's scope, then applied (or its prerequisite's RCODE
    /// returned). The response, signed, echoes the zone section.
    pub(super) async fn handle_update(&self, msg: &[u8], client: IpAddr) -> Option<Vec<u8>> {
        let update = match parse_update(msg) {
            Ok(u) => u,
            Err(rejection) => {
                if let crate::protocol::Rejection::Error { rcode, .. } = rejection {
                    self.count_update(rcode);
                }
                return self.reject(msg, &rejection);
            }
        };
        let Some(signature) = &update.tsig else {
            tracing::info!(%client, zone = %update.zone, "unsigned UPDATE refused");
            self.count_update(rcode::REFUSED);
            return self.reject(msg, &update.reply(rcode::REFUSED));
        };
        let key = match self.check_signature(msg, signature, client, |rcode| {
            self.count_update(rcode);
            self.reject(msg, &update.reply(rcode))
        }) {
            Ok(key) => key,
            Err(response) => return response,
        };
        let rcode = self.apply_update(&update, &key, client).await;
        self.count_update(rcode);
        let mut response = self.reject(msg, &update.reply(rcode))?;
        sign_response(&mut response, &key, signature);
        Some(response)
    }

    /// A NOTIFY: acknowledged for our zones, NOTAUTH for others, nothing else done.
    pub(super) fn handle_notify(&self, msg: &[u8], client: IpAddr) -> Option<Vec<u8>> {
        self.stats.notifies.fetch_add(1, Ordering::Relaxed);
        let catalog = self.resolver().catalog();
        let ours = |zone: &Name| {
            catalog.as_ref().is_some_and(|c| c.find_zone(zone).is_some_and(|z| z.apex == *zone))
        };
        let reply = notify_reply(msg, ours).unwrap_or_else(|rejection| rejection);
        tracing::debug!(%client, "NOTIFY received: we are a primary, nothing to do");
        self.reject(msg, &reply)
    }

    fn count_update(&self, rcode: u16) {
        if let Some(c) = self.stats.updates.get(rcode as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The RCODE of a verified update: its zone and scope checked, its prerequisites
    /// checked and its changes applied in one transaction.
    async fn apply_update(&self, update: &Update<'_>, key: &Key, client: IpAddr) -> u16 {
        let catalog = self.resolver().catalog();
        let zone = catalog.as_ref().and_then(|c| c.find_zone(&update.zone).filter(|z| z.apex == update.zone));
        let (Some(catalog), Some(zone), CLASS_IN) = (catalog.as_ref(), zone, update.zone_class) else {
            tracing::info!(%client, zone = %update.zone, "UPDATE for a zone that is not ours: NOTAUTH");
            return rcode::NOTAUTH;
        };
        let names = update
            .prerequisites
            .iter()
            .map(Prerequisite::name)
            .chain(update.changes.iter().map(Change::name));
        for name in names {
            // In the zone, and not in another zone of ours below it (RFC 2136 3.2, 3.4.1.3).
            if catalog.find_zone(name).is_none_or(|z| z.id != zone.id) {
                tracing::info!(%client, zone = %zone.apex, %name, "UPDATE names a record outside the zone: NOTZONE");
                return rcode::NOTZONE;
            }
            if !key.scope.allows(Operation::Update, &zone.apex, name) {
                tracing::info!(key = %key.name, %client, zone = %zone.apex, %name, "UPDATE outside the key's scope: refused");
                self.count_tsig(TsigOutcome::OutOfScope);
                return rcode::REFUSED;
            }
        }
        self.count_tsig(TsigOutcome::Verified);
        let mut conditions = Vec::new();
        let mut condition_rcodes = Vec::new();
        for prerequisite in &update.prerequisites {
            match self.check(zone, prerequisite).await {
                Ok(Check::Known(true)) => {}
                Ok(Check::Known(false)) => return prerequisite.failure_rcode(),
                Ok(Check::Stored(condition)) => {
                    conditions.push(condition);
                    condition_rcodes.push(prerequisite.failure_rcode());
                }
                Err(rcode) => return rcode,
            }
        }
        let mut writes = Vec::new();
        for change in &update.changes {
            match self.write_for(zone, change).await {
                Ok(write) => writes.push(write),
                Err((rcode, why)) => {
                    tracing::info!(key = %key.name, %client, zone = %zone.apex, name = %change.name(), why, "UPDATE not applied");
                    return rcode;
                }
            }
        }
        let now = unix_now();
        let stored = ZoneUpdate {
            zone_id: zone.id,
            conditions,
            writes,
            now,
            acme_expires_at: now + ACME_UPDATE_LIFETIME_S,
        };
        match self.resolver().store().apply_update(&stored).await {
            Ok(UpdateOutcome::Applied { rows }) => {
                tracing::info!(key = %key.name, %client, zone = %zone.apex, changes = update.changes.len(), rows, "UPDATE applied");
                rcode::NOERROR
            }
            Ok(UpdateOutcome::ConditionFailed(i)) => {
                condition_rcodes.get(i).copied().unwrap_or(rcode::SERVFAIL)
            }
            Err(e) => {
                tracing::warn!(zone = %zone.apex, error = %e, "UPDATE not applied: database error");
                rcode::SERVFAIL
            }
        }
    }

    /// A prerequisite: on the apex SOA and NS (the zone definition) and on names the
    /// platform makes it is decided from the catalog and the resolver; on records and
    /// challenges it becomes a condition checked in the update's transaction.
    async fn check(&self, zone: &Zone, prerequisite: &Prerequisite) -> Result<Check, u16> {
        let name = prerequisite.name();
        let owner = name.to_ascii();
        let definition = |t: RecordType| *name == zone.apex && matches!(t, RecordType::SOA | RecordType::NS);
        let known = |t: RecordType| -> Vec<String> {
            zone.records_at(name)
                .unwrap_or_default()
                .iter()
                .filter(|r| r.record_type() == t)
                .map(|r| presentation(&r.data))
                .collect()
        };
        let platform = if *name == zone.apex { None } else { self.platform_records(zone, name).await? };
        Ok(match (prerequisite, platform) {
            (Prerequisite::NameInUse(_), _) if *name == zone.apex => Check::Known(true),
            (Prerequisite::NameNotInUse(_), _) if *name == zone.apex => Check::Known(false),
            (Prerequisite::RrsetExists(_, t), _) if definition(*t) => Check::Known(true),
            (Prerequisite::RrsetAbsent(_, t), _) if definition(*t) => Check::Known(false),
            (Prerequisite::RrsetEquals(_, t, data), _) if definition(*t) => {
                Check::Known(same_set(&known(*t), &data.iter().map(presentation).collect::<Vec<_>>()))
            }
            (Prerequisite::NameInUse(_), Some(records)) => Check::Known(!records.is_empty()),
            (Prerequisite::NameNotInUse(_), Some(records)) => Check::Known(records.is_empty()),
            (Prerequisite::RrsetExists(_, t), Some(records)) => {
                Check::Known(records.iter().any(|r| r.record_type() == *t))
            }
            (Prerequisite::RrsetAbsent(_, t), Some(records)) => {
                Check::Known(!records.iter().any(|r| r.record_type() == *t))
            }
            (Prerequisite::RrsetEquals(_, t, data), Some(records)) => {
                let have: Vec<String> =
                    records.iter().filter(|r| r.record_type() == *t).map(|r| presentation(&r.data)).collect();
                Check::Known(same_set(&have, &data.iter().map(presentation).collect::<Vec<_>>()))
            }
            (Prerequisite::NameInUse(_), None) => Check::Stored(Condition::NameInUse { owner }),
            (Prerequisite::NameNotInUse(_), None) => Check::Stored(Condition::NameNotInUse { owner }),
            (Prerequisite::RrsetExists(_, t), None) => {
                Check::Stored(Condition::RrsetExists { owner, rtype: t.to_string() })
            }
            (Prerequisite::RrsetAbsent(_, t), None) => {
                Check::Stored(Condition::RrsetAbsent { owner, rtype: t.to_string() })
            }
            (Prerequisite::RrsetEquals(_, t, data), None) => Check::Stored(Condition::RrsetEquals {
                owner,
                rtype: t.to_string(),
                rdata: data.iter().map(presentation).collect(),
            }),
        })
    }

    /// The records the platform answers at `name` (rule-made names, custom domains),
    /// or `None` if the name's data is ours to update (static records, challenges, or
    /// nothing). SERVFAIL if that cannot be told now.
    async fn platform_records(&self, zone: &Zone, name: &Name) -> Result<Option<Vec<Record>>, u16> {
        let is_acme = name.iter().next().is_some_and(|l| l.eq_ignore_ascii_case(b"_acme-challenge"));
        if is_acme || zone.records_at(name).is_some() {
            return Ok(None);
        }
        let mut records = Vec::new();
        for t in [RecordType::A, RecordType::AAAA] {
            let resolution = self.resolver().resolve(name, t).await.map_err(|e| {
                tracing::warn!(%name, error = %e, "UPDATE: cannot tell whether the platform makes this name");
                rcode::SERVFAIL
            })?;
            // A wildcard's synthesized answer is static data, not the platform's.
            if resolution.synthesized_below.is_some() {
                return Ok(None);
            }
            records.extend(resolution.sections.answers.into_iter().filter(|r| r.name == *name));
        }
        records.dedup();
        Ok((!records.is_empty()).then_some(records))
    }

    /// What a change writes, or the RCODE and why not.
    async fn write_for(&self, zone: &Zone, change: &Change) -> Result<Write, (u16, &'static str)> {
        let refused = |why| (rcode::REFUSED, why);
        let name = change.name();
        let owner = name.to_ascii();
        match change.record_type() {
            Some(RecordType::SOA) => {
                return Err(refused("the SOA comes from the zone definition (instadns zone set)"));
            }
            Some(RecordType::NS) if *name == zone.apex => {
                return Err(refused("the apex NS records come from the zone definition (instadns zone set)"));
            }
            _ => {}
        }
        if *name != zone.apex {
            match self.platform_records(zone, name).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    return Err(refused(
                        "the platform makes this name (a rule, an instance or a custom domain): change those instead",
                    ));
                }
                Err(rcode) => return Err((rcode, "cannot tell now whether the platform makes this name")),
            }
        }
        Ok(match change {
            Change::Add(record) => Write::Add {
                owner,
                rtype: record.record_type().to_string(),
                ttl: record.ttl,
                rdata: storable(&record.data).map_err(refused)?,
            },
            Change::DeleteRrset(_, t) => Write::DeleteRrset { owner, rtype: t.to_string() },
            Change::DeleteName(_) => Write::DeleteName { owner },
            Change::DeleteRecord(_, data) => Write::DeleteRecord {
                owner,
                rtype: data.record_type().to_string(),
                rdata: storable(data).map_err(refused)?,
            },
        })
    }
}

/// Record data in the presentation form the records table stores, if it reads back as
/// the same data (the server parses it from there).
fn storable(data: &RData) -> Result<String, &'static str> {
    let text = presentation(data);
    match RData::try_from_str(data.record_type(), &text) {
        Ok(back) if back == *data => Ok(text),
        _ => Err("this record type's data cannot be stored as a static record"),
    }
}

/// Whether two lists hold the same records, ignoring order and duplicates.
fn same_set(a: &[String], b: &[String]) -> bool {
    let set =
        |l: &[String]| l.iter().map(|s| s.to_ascii_lowercase()).collect::<std::collections::BTreeSet<_>>();
    set(a) == set(b)
}
