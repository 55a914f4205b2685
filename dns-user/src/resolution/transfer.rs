//! What a zone transfer sends (RFC 5936 section 2.2): every record the zone answers
//! with, walked page by page so that a zone of millions of names is never held whole.
//! The SOA first; the static records (apex NS, delegations and their glue included);
//! the names the rules make from instances (steered names with their default answer);
//! the custom domains and ACME challenges inside the zone; the SOA again.

use std::sync::Arc;

use hickory_proto::rr::{Record, RecordType};

use super::{Catalog, Resolver, Zone, read_ahead::ReadAhead, sources::existence::instance_names};
use crate::{
    model::acme::ACME_LABEL,
    protocol::parse_absolute,
    store::{Store, StoreError},
};

/// Instances read from the database per page of a walk.
pub const TRANSFER_PAGE: i64 = 256;

/// The types a name made by a rule or a custom domain can have (a host's addresses, or
/// a CNAME, which answers for both), and those of a challenge name (TXT values, or a
/// CNAME). Asking only these keeps a walk to two resolutions per host name.
const HOST_TYPES: &[RecordType] = &[RecordType::A, RecordType::AAAA];
const CHALLENGE_TYPES: &[RecordType] = &[RecordType::TXT];

/// Where a walk of one zone stands.
pub struct ZoneWalk {
    zone: Arc<Zone>,
    stage: Stage,
}

enum Stage {
    Start,
    Instances { after: i64 },
    Names,
    End,
    Done,
}

impl<S: Store> Resolver<S> {
    /// A walk of `zone`, or None if its names cannot be enumerated (instances looked up
    /// with `--instance-sql`): a transfer would miss them.
    pub fn walk(&self, zone: Arc<Zone>) -> Option<ZoneWalk> {
        let enumerable = zone.rules.is_empty() || self.known_read().is_enumerable(zone.id);
        enumerable.then_some(ZoneWalk { zone, stage: Stage::Start })
    }

    /// The next records of the walk, None once it is done. The SOA is the one of the
    /// walk's start at both ends (a change meanwhile is the next transfer's).
    pub async fn next_records(&self, walk: &mut ZoneWalk) -> Result<Option<Vec<Record>>, StoreError> {
        let zone = walk.zone.clone();
        let catalog = self.catalog().ok_or_else(|| StoreError::Unavailable("zones not loaded".into()))?;
        let mut out = Vec::new();
        match walk.stage {
            Stage::Start => {
                out.push(zone.soa());
                for records in zone.records.values() {
                    out.extend(records.iter().filter(|r| r.record_type() != RecordType::SOA).cloned());
                }
                walk.stage = Stage::Instances { after: i64::MIN };
            }
            Stage::Instances { after } => {
                let services = catalog.service_names();
                let page = self.store.instances_after(after, TRANSFER_PAGE).await?;
                walk.stage = match page.last() {
                    Some(last) if page.len() as i64 == TRANSFER_PAGE => Stage::Instances { after: last.id },
                    _ => Stage::Names,
                };
                // The names are resolved as queries are, with the page's instances at
                // hand instead of a database lookup per name and type.
                let read_ahead = Arc::new(ReadAhead::new(&page));
                read_ahead
                    .scope(async {
                        for i in &page {
                            let made = instance_names(
                                &catalog,
                                &services,
                                i.id,
                                i.owner.as_deref(),
                                i.name.as_deref(),
                            );
                            for name in made {
                                self.records_of_made_name(&catalog, &zone, &name, HOST_TYPES, &mut out)
                                    .await?;
                            }
                        }
                        Ok::<_, StoreError>(())
                    })
                    .await?;
            }
            Stage::Names => {
                let domains: Vec<String> =
                    self.domains.read().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
                for domain in domains {
                    self.records_of_made_name(&catalog, &zone, &domain, HOST_TYPES, &mut out).await?;
                }
                for name in self.store.acme_names().await? {
                    let challenge = format!("{ACME_LABEL}.{name}");
                    self.records_of_made_name(&catalog, &zone, &challenge, CHALLENGE_TYPES, &mut out).await?;
                }
                walk.stage = Stage::End;
            }
            Stage::End => {
                out.push(zone.soa());
                walk.stage = Stage::Done;
            }
            Stage::Done => return Ok(None),
        }
        Ok(Some(out))
    }

    /// Appends the records of `types` a name of `zone` that the database makes (not a
    /// static owner: those are sent as they are) answers with at itself.
    async fn records_of_made_name(
        &self,
        catalog: &Catalog,
        zone: &Zone,
        text: &str,
        types: &[RecordType],
        out: &mut Vec<Record>,
    ) -> Result<(), StoreError> {
        let Ok(name) = parse_absolute(text) else { return Ok(()) };
        if !zone.apex.zone_of(&name) || zone.records_at(&name).is_some() || zone.cut_above(&name).is_some() {
            return Ok(());
        }
        // A deeper zone of ours holds it.
        if catalog.find_zone(&name).map(|z| z.id) != Some(zone.id) {
            return Ok(());
        }
        for &qtype in types {
            let resolution = self.resolve(&name, qtype).await?;
            let own = resolution.sections.answers.into_iter().filter(|r| r.name == name);
            let before = out.len();
            out.extend(own);
            if out[before..].iter().any(|r| r.record_type() == RecordType::CNAME) {
                break; // a CNAME is alone at its name
            }
        }
        Ok(())
    }
}
