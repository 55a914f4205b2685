//! The sans-IO core of the server: a DNS message in, the response bytes out. The UDP and
//! TCP front ends only move bytes; all DNS decisions are made here and in the resolver.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use dns_common::wire::{CLASS_IN, udp_response_limit};
use hickory_proto::rr::RecordType;

use crate::{
    answer::{EncodedAnswer, encode, name_from_wire},
    fastpath::{AnswerCache, CacheKey, STALE_MAX, STALE_TTL},
    resolver::Resolver,
    store::Store,
    wire::{self, Query, parse_query, rcode},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Userspace query counters, for metrics.
#[derive(Default)]
pub struct QueryStats {
    pub udp: AtomicU64,
    pub tcp: AtomicU64,
    pub cache_hits: AtomicU64,
    pub truncated: AtomicU64,
    /// Stale answers served while the database was unreachable.
    pub stale: AtomicU64,
    /// Responses by RCODE (index = RCODE, BADVERS = 16).
    pub rcodes: [AtomicU64; 17],
    /// Queries by type, see [`QTYPE_LABELS`].
    pub by_type: [AtomicU64; QTYPE_LABELS.len()],
}

/// The query types counted separately; everything else is "other".
pub const QTYPE_LABELS: [(&str, u16); 10] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
    ("HTTPS", 65),
    ("ANY", 255),
    ("other", 0),
];

pub struct Handler<S> {
    resolver: Arc<Resolver<S>>,
    cache: Arc<AnswerCache>,
    edns_payload: u16,
    /// Round-robin position for rotated answers.
    rotation: std::sync::atomic::AtomicUsize,
    pub stats: QueryStats,
}

impl<S: Store> Handler<S> {
    pub fn new(resolver: Arc<Resolver<S>>, cache: Arc<AnswerCache>, edns_payload: u16) -> Self {
        Self { resolver, cache, edns_payload, rotation: Default::default(), stats: QueryStats::default() }
    }

    pub fn cache(&self) -> &Arc<AnswerCache> {
        &self.cache
    }

    pub fn resolver(&self) -> &Arc<Resolver<S>> {
        &self.resolver
    }

    /// Handles one message; `None` means send nothing (responses, runt packets).
    pub async fn handle(&self, msg: &[u8], transport: Transport) -> Option<Vec<u8>> {
        match transport {
            Transport::Udp => &self.stats.udp,
            Transport::Tcp => &self.stats.tcp,
        }
        .fetch_add(1, Ordering::Relaxed);
        let query = match parse_query(msg) {
            Ok(q) => q,
            Err(rejection) => {
                if let wire::Rejection::Error { rcode, .. } = rejection {
                    self.count_rcode(rcode);
                }
                return wire::error_response(msg, &rejection, self.edns_payload);
            }
        };
        let type_index =
            QTYPE_LABELS.iter().position(|(_, t)| *t == query.qtype).unwrap_or(QTYPE_LABELS.len() - 1);
        self.stats.by_type[type_index].fetch_add(1, Ordering::Relaxed);
        let answer = self.answer(&query, transport).await;
        self.count_rcode(answer.rcode);
        let limit = match transport {
            Transport::Udp => {
                Some(udp_response_limit(query.edns.map(|e| e.payload), self.edns_payload) as usize)
            }
            Transport::Tcp => None,
        };
        let rotation = self.rotation.fetch_add(1, Ordering::Relaxed);
        let response = wire::response(&query, &answer, self.edns_payload, limit, rotation);
        if response.len() > 2 && response[2] & dns_common::wire::FLAG1_TC != 0 {
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
        Some(response)
    }

    async fn answer(&self, query: &Query<'_>, transport: Transport) -> Arc<EncodedAnswer> {
        if query.qclass != CLASS_IN {
            return Arc::new(EncodedAnswer::refused());
        }
        match RecordType::from(query.qtype) {
            // Zone transfers are not offered (yet): refused, as for unknown clients.
            RecordType::AXFR | RecordType::IXFR => return Arc::new(EncodedAnswer::refused()),
            // MAILA and MAILB are obsolete (RFC 883): not implemented.
            RecordType::Unknown(253) | RecordType::Unknown(254) => {
                return Arc::new(EncodedAnswer::empty(rcode::NOTIMP, false));
            }
            _ => {}
        }
        let key = CacheKey::new(query.name.as_bytes(), query.qtype);
        if let Some(answer) = self.cache.lookup(&key) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            if transport == Transport::Udp {
                self.cache.ensure_in_kernel(&key);
            }
            return answer;
        }
        self.resolve_and_cache(&key, false).await
    }

    /// Resolves `key` afresh and caches (and installs) the answer if cacheable; when
    /// `replacing` a cached answer, an uncacheable one removes it. While the database is
    /// unreachable, a recently expired answer is served again instead (RFC 8767); with
    /// none, SERVFAIL.
    async fn resolve_and_cache(&self, key: &CacheKey, replacing: bool) -> Arc<EncodedAnswer> {
        let epoch = self.cache.epoch();
        let name = match name_from_wire(key.name()) {
            Ok(name) => name,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable question name");
                return Arc::new(EncodedAnswer::empty(rcode::FORMERR, false));
            }
        };
        let resolution = match self.resolver.resolve(&name, RecordType::from(key.qtype())).await {
            Ok(r) => r,
            Err(e) => {
                if e.is_unavailable()
                    && let Some(stale) = self.cache.extend_stale(key, STALE_MAX, STALE_TTL)
                {
                    self.stats.stale.fetch_add(1, Ordering::Relaxed);
                    return stale;
                }
                tracing::warn!(error = %e, %name, "lookup failed; answering SERVFAIL");
                return Arc::new(EncodedAnswer::servfail());
            }
        };
        let encoded = match encode(
            &name,
            key.qtype(),
            resolution.rcode,
            resolution.authoritative,
            &resolution.sections,
            resolution.rotate.clone(),
        ) {
            Ok(e) => Arc::new(e),
            Err(e) => {
                tracing::warn!(error = %e, %name, "encoding failed; answering SERVFAIL");
                return Arc::new(EncodedAnswer::servfail());
            }
        };
        match resolution.cache_ttl {
            Some(ttl) => self.cache.insert(key.clone(), encoded.clone(), ttl, resolution.tags, epoch),
            None if replacing => self.cache.remove(std::slice::from_ref(key)),
            None => {}
        }
        encoded
    }

    /// Replaces a cached answer after a database change (so hot names stay in the fast
    /// path). Call after [`AnswerCache::begin_invalidation`].
    pub async fn refresh(&self, key: &CacheKey) {
        self.resolve_and_cache(key, true).await;
    }

    fn count_rcode(&self, rcode: u16) {
        if let Some(c) = self.stats.rcodes.get(rcode as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}
