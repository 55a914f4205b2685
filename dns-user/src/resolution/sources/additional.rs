//! Additional section processing (RFC 1034 section 4.3.2 step 6, RFC 2782): the
//! addresses of in-zone targets of MX, SRV and NS answers, as optional records (a
//! response too large for the client leaves them out, without TC).

use hickory_proto::rr::{Name, RData};

use super::{
    super::{Catalog, Resolution},
    delegation::{addresses, push_optional},
};

/// Adds the addresses of the answer section's MX, SRV and NS targets that lie in the
/// same zone as the record, and not below one of its delegations.
pub fn add(catalog: &Catalog, res: &mut Resolution) {
    let targets: Vec<(Name, Name)> = res
        .sections
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::MX(mx) => Some((r.name.clone(), mx.exchange.clone())),
            RData::SRV(srv) => Some((r.name.clone(), srv.target.clone())),
            RData::NS(ns) => Some((r.name.clone(), ns.0.clone())),
            _ => None,
        })
        .collect();
    let mut found = Vec::new();
    for (owner, target) in targets {
        let target = target.to_lowercase();
        let (Some(zone), Some(target_zone)) = (catalog.find_zone(&owner), catalog.find_zone(&target)) else {
            continue;
        };
        if zone.id == target_zone.id && zone.cut_above(&target).is_none() {
            found.extend(addresses(zone, &target));
        }
    }
    push_optional(res, found);
}
