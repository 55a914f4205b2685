//! Zone transfers out over TCP: AXFR (RFC 5936) and IXFR (RFC 1995), which is answered
//! with the whole zone in AXFR form (section 4 allows it: the change log records which
//! names changed, not the records they had) or with the SOA alone when the client is up
//! to date. An IXFR over UDP gets the SOA alone either way (section 2: the client is up
//! to date, or asks again over TCP); AXFR over UDP is REFUSED (RFC 5936 section 4.2).
//! Who may transfer: a key whose scope has `transfer` for the zone, from anywhere, or
//! any client of a network in `[transfer] allow_networks`, unsigned. Every message of a
//! signed transfer is signed (RFC 8945 section 5.3.1).

use std::{net::IpAddr, sync::atomic::Ordering};

use dns_common::wire::{TYPE_AXFR, TYPE_IXFR, rcode};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query as Question},
    rr::Record,
    serialize::binary::{BinDecodable as _, BinDecoder, BinEncodable as _},
};
use tokio::sync::mpsc;

use super::{Handler, Transport};
use crate::{
    model::{key::Operation, prefix::Prefix, time::unix_now},
    protocol::{Query, name::name_from_wire, parse_query, query::peek_qtype, serial::is_newer, tsig},
    resolution::keys::Key,
    store::Store,
};

/// Bytes of records per message of a transfer (TCP messages may be 64 KiB; smaller ones
/// keep each signature's work and the buffers small).
const MESSAGE_BYTES: usize = 16 * 1024;

/// Who may transfer zones without a key.
#[derive(Clone, Debug, Default)]
pub struct TransferPolicy {
    pub allow_networks: Vec<Prefix>,
}

/// Whether `msg` asks for a zone transfer (its response is several messages): read
/// from the question alone, so routing a TCP query costs no second parse.
pub fn is_transfer(msg: &[u8]) -> bool {
    matches!(peek_qtype(msg), Some(TYPE_AXFR | TYPE_IXFR))
}

/// Signs the messages of one response in turn.
struct Signer<'a> {
    key: &'a Key,
    request_mac: &'a [u8],
    prior_mac: Option<Vec<u8>>,
}

impl Signer<'_> {
    fn sign(&mut self, message: &mut Vec<u8>) {
        let now = unix_now().max(0) as u64;
        self.prior_mac = Some(match &self.prior_mac {
            None => tsig::sign(message, &self.key.tsig, self.request_mac, now, tsig::error::NOERROR, &[]),
            Some(prior) => tsig::sign_continuation(message, &self.key.tsig, prior, now),
        });
    }
}

impl<S: Store> Handler<S> {
    /// Answers a transfer request from `client` with the messages sent to `out`, in
    /// order; stops early if the receiver goes.
    pub async fn transfer(&self, msg: &[u8], client: IpAddr, out: &mpsc::Sender<Vec<u8>>) {
        match parse_query(msg) {
            Ok(query) => self.serve_transfer(msg, &query, client, out, true).await,
            // Not a transfer after all (the question read, the rest malformed): answered
            // as any query is.
            Err(_) => {
                if let Some(response) = self.handle(msg, Transport::Tcp, client).await {
                    let _ = out.send(response).await;
                }
            }
        }
    }

    /// The one message that answers an IXFR over UDP (`query`, parsed from `msg`): the
    /// current SOA to a client allowed to transfer the zone, else the error a TCP
    /// transfer would get.
    pub(super) async fn udp_ixfr(&self, msg: &[u8], query: &Query<'_>, client: IpAddr) -> Option<Vec<u8>> {
        let (sender, mut receiver) = mpsc::channel(1);
        self.serve_transfer(msg, query, client, &sender, false).await;
        drop(sender);
        receiver.recv().await
    }

    /// A transfer of the zone `query` (parsed from `msg`) asks for; `whole_zone` false
    /// answers with the SOA alone (one message) once the client is allowed.
    async fn serve_transfer(
        &self,
        msg: &[u8],
        query: &Query<'_>,
        client: IpAddr,
        out: &mpsc::Sender<Vec<u8>>,
        whole_zone: bool,
    ) {
        let key = match &query.tsig {
            None => None,
            Some(signature) => {
                match self.check_signature(msg, signature, client, |rcode| self.error_to(msg, query, rcode)) {
                    Ok(key) => Some(key),
                    Err(response) => {
                        if let Some(response) = response {
                            let _ = out.send(response).await;
                        }
                        return;
                    }
                }
            }
        };
        let mut signer = key.as_deref().zip(query.tsig.as_ref()).map(|(key, signature)| Signer {
            key,
            request_mac: signature.mac,
            prior_mac: None,
        });
        let catalog = self.resolver().catalog();
        let name = name_from_wire(query.name.as_bytes()).ok();
        let zone = catalog
            .as_ref()
            .zip(name.as_ref())
            .and_then(|(c, name)| c.find_zone(name).filter(|z| z.apex == *name).cloned());
        let Some(zone) = zone else {
            tracing::info!(%client, name = ?query.name, "transfer of a zone that is not ours: NOTAUTH");
            self.stats.transfers_refused.fetch_add(1, Ordering::Relaxed);
            if let Some(response) = self.error_to(msg, query, rcode::NOTAUTH) {
                emit(out, &mut signer, response).await;
            }
            return;
        };
        let allowed = match &key {
            Some(key) => key.scope.allows(Operation::Transfer, &zone.apex, &zone.apex),
            None => self.transfer.allow_networks.iter().any(|net| net.contains(client)),
        };
        let walk = if allowed { self.resolver().walk(zone.clone()) } else { None };
        let Some(mut walk) = walk else {
            match allowed {
                true => {
                    tracing::warn!(%client, zone = %zone.apex, "transfer refused: the zone's names cannot be enumerated (--instance-sql)")
                }
                false => {
                    tracing::info!(%client, zone = %zone.apex, key = ?key.as_ref().map(|k| k.name.to_string()), "transfer not allowed: REFUSED")
                }
            }
            self.stats.transfers_refused.fetch_add(1, Ordering::Relaxed);
            if let Some(response) = self.error_to(msg, query, rcode::REFUSED) {
                emit(out, &mut signer, response).await;
            }
            return;
        };
        let mut packer = Packer::new(query);
        let up_to_date = query.ixfr_serial.is_some_and(|s| !is_newer(zone.serial(), s));
        if up_to_date || !whole_zone {
            // Up to date, or over UDP (RFC 1995 section 2): the current SOA alone.
            tracing::debug!(%client, zone = %zone.apex, client_serial = ?query.ixfr_serial, whole_zone, "IXFR answered with the SOA alone");
            packer.push(zone.soa());
            if let Some(message) = packer.take() {
                emit(out, &mut signer, message).await;
            }
            self.stats.transfers.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let started = std::time::Instant::now();
        let mut records = 0usize;
        loop {
            let page = match self.resolver().next_records(&mut walk).await {
                Ok(Some(page)) => page,
                Ok(None) => break,
                Err(e) => {
                    // The client sees the transfer end without the closing SOA and retries.
                    tracing::warn!(error = %e, %client, zone = %zone.apex, "transfer aborted");
                    if packer.is_first()
                        && let Some(response) = self.error_to(msg, query, rcode::SERVFAIL)
                    {
                        emit(out, &mut signer, response).await;
                    }
                    return;
                }
            };
            for record in page {
                records += 1;
                if let Some(message) = packer.push(record)
                    && !emit(out, &mut signer, message).await
                {
                    return;
                }
            }
        }
        if let Some(message) = packer.take()
            && !emit(out, &mut signer, message).await
        {
            return;
        }
        self.stats.transfers.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%client, zone = %zone.apex, serial = zone.serial(), records, took = ?started.elapsed(), signed = key.is_some(), "zone transferred");
    }
}

/// Signs `message` if the request was signed and sends it; false once the receiver is
/// gone.
async fn emit(out: &mpsc::Sender<Vec<u8>>, signer: &mut Option<Signer<'_>>, mut message: Vec<u8>) -> bool {
    if let Some(signer) = signer.as_mut() {
        signer.sign(&mut message);
    }
    out.send(message).await.is_ok()
}

/// Groups records into response messages of about [`MESSAGE_BYTES`].
struct Packer {
    id: u16,
    recursion_desired: bool,
    /// The question, echoed in the first message (RFC 5936 section 2.2.1).
    question: Option<Question>,
    records: Vec<Record>,
    bytes: usize,
    sent: usize,
}

impl Packer {
    fn new(query: &Query<'_>) -> Self {
        let question = Question::read(&mut BinDecoder::new(query.question)).ok();
        Self {
            id: query.id,
            recursion_desired: query.flags[0] & dns_common::wire::FLAG1_RD != 0,
            question,
            records: Vec::new(),
            bytes: 0,
            sent: 0,
        }
    }

    fn is_first(&self) -> bool {
        self.sent == 0
    }

    /// Adds a record; returns the message it completed, if any.
    fn push(&mut self, record: Record) -> Option<Vec<u8>> {
        let len = record.to_bytes().map_or(usize::MAX, |b| b.len());
        if len > u16::MAX as usize / 2 {
            tracing::warn!(name = %record.name, "record too large for a transfer message: left out");
            return None;
        }
        let full =
            (self.bytes + len > MESSAGE_BYTES && !self.records.is_empty()).then(|| self.take()).flatten();
        self.bytes += len;
        self.records.push(record);
        full
    }

    /// The message of the records pushed since the last one, if there are any.
    fn take(&mut self) -> Option<Vec<u8>> {
        if self.records.is_empty() {
            return None;
        }
        let mut message = Message::new(self.id, MessageType::Response, OpCode::Query);
        message.metadata.authoritative = true;
        message.metadata.recursion_desired = self.recursion_desired;
        if let (0, Some(question)) = (self.sent, self.question.clone()) {
            message.add_query(question);
        }
        message.add_answers(std::mem::take(&mut self.records));
        self.bytes = 0;
        self.sent += 1;
        match message.to_vec() {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                tracing::warn!(error = %e, "transfer message could not be encoded");
                None
            }
        }
    }
}
