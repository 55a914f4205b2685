//! Static records: the RRsets stored at a name.

use dns_common::wire::rcode;
use hickory_proto::rr::{RData, Record, RecordType, rdata::CNAME};

use super::super::{At, Resolution, Step, Tag};

/// Answers from static RRsets at `name`.
pub fn answer(records: &[Record], at: At<'_>, res: &mut Resolution) -> Step {
    let At { zone, name, qtype, .. } = at;
    let of_type = |t: RecordType| records.iter().filter(move |r| r.record_type() == t);
    if qtype == RecordType::ANY {
        // RFC 8482: answer ANY with one RRset rather than everything.
        let first = records.iter().map(Record::record_type).min_by_key(|t| u16::from(*t));
        if let Some(t) = first {
            res.sections.answers.extend(of_type(t).cloned());
        }
        return Step::Done;
    }
    if qtype == RecordType::SOA && of_type(RecordType::SOA).next().is_some() {
        // The stored SOA's serial is the catalog's, not the zone's current one.
        res.sections.answers.push(zone.soa());
        res.tag(Tag::Soa(zone.id));
        return Step::Done;
    }
    let matching: Vec<Record> = of_type(qtype).cloned().collect();
    if !matching.is_empty() {
        res.sections.answers.extend(matching);
        return Step::Done;
    }
    if let Some(cname) = of_type(RecordType::CNAME).next() {
        res.sections.answers.push(cname.clone());
        if let RData::CNAME(CNAME(target)) = &cname.data {
            return Step::Chase(target.to_lowercase());
        }
    }
    res.note(|| format!("no {qtype} records at {name}"));
    res.negative(zone, name, rcode::NOERROR);
    Step::Done
}
