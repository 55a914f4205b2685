//! Delegations (RFC 1034 section 4.3.2 step 3b, RFC 9471): NS records below the apex cut
//! the zone. A query at or below the cut gets a referral: AA clear, the child's NS set
//! in the authority section, in-bailiwick glue in the additional section (the glue of
//! name servers below the cut is required: a response without it is truncated; other
//! addresses in the zone are optional). A DS query at the cut is the parent's to answer.

use dns_common::wire::rcode;
use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::NS};

use super::super::{At, Resolution, Step, Zone};

/// Answers at or below the delegation `cut` of the zone.
pub fn answer(at: At<'_>, cut: &Name, res: &mut Resolution) -> Step {
    let At { zone, name, qtype, .. } = at;
    let at_cut = zone.records_at(cut).unwrap_or_default();
    if name == cut && qtype == RecordType::DS {
        // The parent side of the cut (RFC 4035 section 3.1.4.1): its DS set, or NODATA.
        let ds: Vec<Record> = at_cut.iter().filter(|r| r.record_type() == RecordType::DS).cloned().collect();
        res.note(|| format!("DS at the delegation {cut}: answered by the parent"));
        if ds.is_empty() {
            res.negative(zone, name, rcode::NOERROR);
        } else {
            res.sections.answers.extend(ds);
        }
        return Step::Done;
    }
    res.note(|| format!("below the delegation {cut}: a referral"));
    res.authoritative = false;
    let ns: Vec<Record> = at_cut.iter().filter(|r| r.record_type() == RecordType::NS).cloned().collect();
    let (mut required, mut optional) = (Vec::new(), Vec::new());
    for record in &ns {
        let RData::NS(NS(target)) = &record.data else { continue };
        let glue = addresses(zone, target);
        if cut.zone_of(target) {
            required.extend(glue);
        } else if zone.apex.zone_of(target) && zone.cut_above(target).is_none() {
            optional.extend(glue);
        }
    }
    res.sections.authority.extend(ns);
    res.sections.required_additional = required.len();
    res.sections.additional.extend(required);
    push_optional(res, optional);
    Step::Done
}

/// The static A and AAAA records at `name`.
pub fn addresses(zone: &Zone, name: &Name) -> Vec<Record> {
    zone.records_at(&name.to_lowercase())
        .unwrap_or_default()
        .iter()
        .filter(|r| matches!(r.record_type(), RecordType::A | RecordType::AAAA))
        .cloned()
        .collect()
}

/// Appends optional additional records not already in the response.
pub fn push_optional(res: &mut Resolution, records: Vec<Record>) {
    for r in records {
        let sections = &res.sections;
        if !sections.additional.contains(&r) && !sections.answers.contains(&r) {
            res.sections.additional.push(r);
        }
    }
}
