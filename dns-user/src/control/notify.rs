//! NOTIFY to secondaries (RFC 1996): when a zone's serial changes, each configured
//! secondary is told, so it asks for the zone at once instead of at its next refresh.
//! Changes are coalesced (a newer serial replaces a NOTIFY still being retried), each
//! NOTIFY is retried with backoff until the secondary answers, and signed when a key
//! is configured. The serials are watched in the catalog, which the change follower
//! keeps current: nothing here touches the database.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use dns_common::wire::{FLAG1_QR, rcode};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, RecordType},
};
use tokio::{net::UdpSocket, task::JoinHandle};

use crate::{
    model::time::unix_now,
    protocol::{name_to_wire, tsig},
    resolution::{Resolver, Zone},
    store::Store,
};

/// How often the zones' serials are compared with what was last announced.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// Sends of one NOTIFY before giving up (RFC 1996 section 3.6: retry, with backoff).
const ATTEMPTS: u32 = 6;
/// The wait for an answer to the first send; doubled for each later one (31.5 s in all).
const FIRST_WAIT: Duration = Duration::from_millis(500);

/// Where NOTIFY messages go, and how they are signed.
#[derive(Clone, Debug, Default)]
pub struct NotifyTargets {
    pub secondaries: Vec<SocketAddr>,
    /// The key's name, as `instadns key list` prints it.
    pub key: Option<Name>,
}

/// NOTIFY counters, for metrics.
#[derive(Debug, Default)]
pub struct NotifyStats {
    /// Messages sent, retries included.
    pub sent: AtomicU64,
    /// NOTIFYs a secondary answered with NOERROR.
    pub acknowledged: AtomicU64,
    /// NOTIFYs a secondary answered with an error (a key it does not accept, a zone it
    /// does not serve): not retried, it would answer the same.
    pub rejected: AtomicU64,
    /// NOTIFYs given up after every attempt.
    pub abandoned: AtomicU64,
}

/// Announces every serial change of every zone to the secondaries, until dropped. With
/// no secondaries it waits forever: the daemon treats a task that ends as a failure.
pub async fn announce<S: Store>(resolver: Arc<Resolver<S>>, targets: NotifyTargets, stats: Arc<NotifyStats>) {
    if targets.secondaries.is_empty() {
        return std::future::pending().await;
    }
    // (zone id, secondary) -> the serial announced or being announced, and the sender.
    let mut announcing: HashMap<(i64, SocketAddr), (u32, JoinHandle<()>)> = HashMap::new();
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tick.tick().await;
        let Some(catalog) = resolver.catalog() else { continue };
        for zone in catalog.zones() {
            let serial = zone.serial();
            for secondary in &targets.secondaries {
                let slot = (zone.id, *secondary);
                if announcing.get(&slot).is_some_and(|(s, _)| *s == serial) {
                    continue;
                }
                let key = targets
                    .key
                    .as_ref()
                    .and_then(|name| catalog.keys.get(&name_to_wire(&name.to_lowercase())).cloned());
                if targets.key.is_some() && key.is_none() {
                    tracing::warn!(key = ?targets.key, "the NOTIFY key is not among the keys (instadns key list): sending unsigned");
                }
                let sender = tokio::spawn(notify_one(zone.clone(), *secondary, key, stats.clone()));
                if let Some((_, older)) = announcing.insert(slot, (serial, sender)) {
                    older.abort(); // coalesced: the newer serial is announced instead
                }
            }
        }
        let zones: Vec<i64> = catalog.zones().map(|z| z.id).collect();
        announcing.retain(|(zone, _), _| zones.contains(zone));
    }
}

/// Sends one zone's NOTIFY to one secondary until it answers or the attempts run out.
async fn notify_one(
    zone: Arc<Zone>,
    secondary: SocketAddr,
    key: Option<Arc<crate::resolution::keys::Key>>,
    stats: Arc<NotifyStats>,
) {
    let local: IpAddr = match secondary {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = match UdpSocket::bind((local, 0)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, %secondary, "cannot open a socket for NOTIFY");
            return;
        }
    };
    let mut wait = FIRST_WAIT;
    for attempt in 1..=ATTEMPTS {
        let id: u16 = rand::random();
        let Some(mut message) = notify_message(&zone, id) else { return };
        let signed = key.as_ref().map(|key| {
            let mac = tsig::sign_request(&mut message, &key.tsig, unix_now().max(0) as u64);
            (key, mac)
        });
        stats.sent.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = socket.send_to(&message, secondary).await {
            tracing::debug!(error = %e, %secondary, attempt, "NOTIFY not sent");
        } else if let Some(code) = answered(&socket, secondary, id, wait, signed.as_ref()).await {
            if code == rcode::NOERROR {
                stats.acknowledged.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(zone = %zone.apex, serial = zone.serial(), %secondary, attempt, "NOTIFY acknowledged");
            } else {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(zone = %zone.apex, serial = zone.serial(), %secondary, rcode = code, "NOTIFY rejected by the secondary (check its key and zone configuration)");
            }
            return;
        }
        wait *= 2; // the wait is the backoff
    }
    stats.abandoned.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(zone = %zone.apex, serial = zone.serial(), %secondary, "NOTIFY unanswered after {ATTEMPTS} attempts");
}

/// NOTIFY for `zone` with its current SOA as the hint (RFC 1996 section 3.7).
fn notify_message(zone: &Zone, id: u16) -> Option<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.add_query(Query::query(zone.apex.clone(), RecordType::SOA));
    message.add_answer(zone.soa());
    message.to_vec().ok()
}

/// The RCODE of the secondary's answer to NOTIFY `id` within `wait`, if it answered. A
/// NOTIFY we signed counts as acknowledged only by an answer signed with the same key
/// over our MAC (RFC 8945 section 5.3): anyone can send an unsigned NOERROR with the
/// right ID. An unsigned error answer still counts (a secondary without our key answers
/// NOTAUTH unsigned).
async fn answered(
    socket: &UdpSocket,
    secondary: SocketAddr,
    id: u16,
    wait: Duration,
    signed: Option<&(&Arc<crate::resolution::keys::Key>, Vec<u8>)>,
) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        let (len, from) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await.ok()?.ok()?;
        let reply = &buf[..len];
        if from != secondary || len < 12 || reply[..2] != id.to_be_bytes() || reply[2] & FLAG1_QR == 0 {
            continue;
        }
        let code = u16::from(reply[3] & 0x0f);
        let Some((key, request_mac)) = signed else { return Some(code) };
        let verified = tsig::find_record(reply).map(|record| {
            tsig::verify_response(reply, &record, &key.tsig, request_mac, unix_now().max(0) as u64)
        });
        match verified {
            Some(Ok(())) => return Some(code),
            _ if code != rcode::NOERROR => return Some(code),
            failure => {
                tracing::warn!(%secondary, ?failure, "NOTIFY answer ignored: not signed with our key");
            }
        }
    }
}
