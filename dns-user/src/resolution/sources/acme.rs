//! `_acme-challenge.<name>`: DNS-01 challenge answers (RFC 8555 section 8.4).

use dns_common::wire::rcode;
use hickory_proto::rr::{
    RData, Record, RecordType,
    rdata::{CNAME, TXT},
};

use super::super::{At, Resolution, Resolver, Step, Tag};
use crate::{
    model::{AcmeKind, acme::ACME_LABEL, time::unix_now},
    protocol::parse_absolute,
    store::{Store, StoreError},
};

impl<S: Store> Resolver<S> {
    /// `_acme-challenge.<name>`: the challenge's TXT values (those not expired), or its
    /// CNAME into a validation zone.
    pub(in crate::resolution) async fn acme(
        &self,
        at: At<'_>,
        res: &mut Resolution,
    ) -> Result<Option<Step>, StoreError> {
        let At { zone, name, qtype, .. } = at;
        let Some(first) = name.iter().next() else { return Ok(None) };
        if !first.eq_ignore_ascii_case(ACME_LABEL.as_bytes()) || name.num_labels() < 2 {
            return Ok(None);
        }
        let validated = name.base_name().to_ascii();
        let now = unix_now();
        let challenges: Vec<_> = self
            .store
            .acme(&validated)
            .await?
            .into_iter()
            .filter(|c| c.expires_at.is_none_or(|t| t > now))
            .collect();
        if challenges.is_empty() {
            return Ok(None);
        }
        res.tag(Tag::Name(name.to_ascii()));
        res.note(|| format!("ACME challenge for {validated}"));
        if let Some(c) = challenges.iter().find(|c| c.kind == AcmeKind::Cname) {
            let target = parse_absolute(&c.value)?;
            res.sections.answers.push(Record::from_rdata(
                name.clone(),
                c.ttl,
                RData::CNAME(CNAME(target.clone())),
            ));
            return Ok(Some(if matches!(qtype, RecordType::CNAME | RecordType::ANY) {
                Step::Done
            } else {
                Step::Chase(target)
            }));
        }
        if !matches!(qtype, RecordType::TXT | RecordType::ANY) {
            res.negative(zone, name, rcode::NOERROR);
            return Ok(Some(Step::Done));
        }
        for c in challenges {
            // Never cached past the value's expiry.
            let ttl = c.expires_at.map_or(c.ttl, |t| c.ttl.min((t - now).clamp(1, u32::MAX.into()) as u32));
            res.sections.answers.push(Record::from_rdata(
                name.clone(),
                ttl,
                RData::TXT(TXT::new(vec![c.value])),
            ));
        }
        Ok(Some(Step::Done))
    }
}
