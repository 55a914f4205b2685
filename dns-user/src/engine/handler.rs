//! The sans-IO core of the server: a DNS message in, the response bytes out. The UDP and
//! TCP front ends only move bytes; all DNS decisions are made here and in the resolver.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, atomic::Ordering},
};

use dns_common::{
    cookie::COOKIE_DATA_LEN,
    maps::key_check,
    rrl::Verdict,
    wire::{CLASS_IN, FLAG1_OPCODE_MASK, FLAG1_QR, FLAG1_TC, TYPE_IXFR, TYPE_SOA, rcode, udp_response_limit},
};
use hickory_proto::rr::{Name, RecordType};

use super::{
    budget::LookupBudget,
    cache::{AnswerCache, CachePolicy},
    stats::{QTYPE_LABELS, QueryStats, TsigOutcome},
    transfer::TransferPolicy,
};
use crate::{
    fastpath::{
        cookies::{CookieSettings, ServerCookies},
        rrl::{RateLimiter, RrlSettings, token_kind},
    },
    model::{key::Operation, time::unix_now},
    protocol::{
        CacheKey, CookieOption, Echo, EncodeError, EncodedAnswer, Query, Rejection, Sections, Steered,
        VariantChoice, display_wire_name, encode, error_response,
        name::{NameError, name_from_wire},
        parse_query, response, truncated_response,
        tsig::{self, TsigFailure, TsigRecord},
        update::{OPCODE_NOTIFY, OPCODE_UPDATE},
    },
    resolution::{
        Resolution, Resolver, Tag, Zone,
        keys::Key,
        steering::{Selection, Variation, pick_bounds},
    },
    store::{Store, StoreError},
};

/// Every variant of an answer, how long it may be cached, what it depends on, and the
/// closest encloser whose every nonexistent name it answers (see `Resolution`).
struct Resolved {
    steered: Steered,
    cache_ttl: Option<u32>,
    tags: Vec<Tag>,
    synthesized_below: Option<Name>,
}

/// Why an answer could not be resolved.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Name(#[from] NameError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

pub struct Handler<S> {
    resolver: Arc<Resolver<S>>,
    cache: Arc<AnswerCache>,
    edns_payload: u16,
    /// Round-robin position for rotated answers.
    rotation: std::sync::atomic::AtomicUsize,
    /// Weighted-pick counter (the XDP program keeps one per CPU).
    picks: std::sync::atomic::AtomicU32,
    policy: CachePolicy,
    /// Database lookups per zone per second for queries.
    budget: LookupBudget,
    /// Misses being resolved: an identical one waits for that answer (single flight).
    in_flight: std::sync::Mutex<HashMap<CacheKey, Arc<tokio::sync::OnceCell<Arc<Steered>>>>>,
    /// Who may transfer zones without a key.
    pub(super) transfer: TransferPolicy,
    /// Response rate limiting of UDP answers (shared with the XDP program).
    limiter: Arc<RateLimiter>,
    /// DNS server cookies (shared with the XDP program).
    cookies: Arc<ServerCookies>,
    pub stats: QueryStats,
}

impl<S: Store> Handler<S> {
    pub fn new(resolver: Arc<Resolver<S>>, cache: Arc<AnswerCache>, edns_payload: u16) -> Self {
        Self {
            resolver,
            cache,
            edns_payload,
            rotation: Default::default(),
            picks: Default::default(),
            policy: CachePolicy::default(),
            budget: LookupBudget::unlimited(),
            in_flight: Default::default(),
            transfer: TransferPolicy::default(),
            limiter: Arc::new(RateLimiter::in_memory(RrlSettings::off())),
            cookies: Arc::new(ServerCookies::in_memory(&CookieSettings::off())),
            stats: QueryStats::default(),
        }
    }

    /// The same, limiting UDP responses with `limiter`.
    pub fn with_rate_limiter(mut self, limiter: Arc<RateLimiter>) -> Self {
        self.limiter = limiter;
        self
    }

    pub fn rate_limiter(&self) -> &Arc<RateLimiter> {
        &self.limiter
    }

    /// The same, answering DNS cookies with `cookies`.
    pub fn with_cookies(mut self, cookies: Arc<ServerCookies>) -> Self {
        self.cookies = cookies;
        self
    }

    pub fn cookies(&self) -> &Arc<ServerCookies> {
        &self.cookies
    }

    /// The same with at most `per_second` database lookups per zone per second for
    /// queries (0: no cap).
    pub fn with_lookup_budget(mut self, per_second: u32) -> Self {
        self.budget = LookupBudget::new(per_second);
        self
    }

    /// The same with this policy for unsigned zone transfers.
    pub fn with_transfer_policy(mut self, policy: TransferPolicy) -> Self {
        self.transfer = policy;
        self
    }

    /// The same with these cache lifetimes and stale serving.
    pub fn with_policy(mut self, policy: CachePolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn cache(&self) -> &Arc<AnswerCache> {
        &self.cache
    }

    pub fn resolver(&self) -> &Arc<Resolver<S>> {
        &self.resolver
    }

    /// Handles one message from `client`; `None` means send nothing (responses, runt
    /// packets).
    pub async fn handle(&self, msg: &[u8], transport: Transport, client: IpAddr) -> Option<Vec<u8>> {
        match transport {
            Transport::Udp => &self.stats.udp,
            Transport::Tcp => &self.stats.tcp,
        }
        .fetch_add(1, Ordering::Relaxed);
        match msg.get(2).map(|f| (f & FLAG1_OPCODE_MASK) >> 3) {
            Some(OPCODE_UPDATE) if msg[2] & FLAG1_QR == 0 => return self.handle_update(msg, client).await,
            Some(OPCODE_NOTIFY) if msg[2] & FLAG1_QR == 0 => return self.handle_notify(msg, client),
            _ => {}
        }
        let query = match parse_query(msg) {
            Ok(q) => q,
            Err(rejection) => {
                let (response, proven) = self.reject_from(msg, &rejection, client);
                // Errors are limited like answers (CVE-2024-2169: error loops), but for
                // a client whose cookie proved its address.
                return match transport {
                    Transport::Udp if !proven => self.limit_error(response?, client),
                    _ => response,
                };
            }
        };
        if transport == Transport::Udp && query.qtype == TYPE_IXFR {
            return self.udp_ixfr(msg, &query, client).await;
        }
        if let Some(signature) = &query.tsig {
            return self.handle_signed(msg, &query, signature, transport, client).await;
        }
        self.respond(&query, transport, client, 0).await
    }

    /// A malformed query's error response within the rate limit: slipped, it is the same
    /// with TC set (it carries no records).
    fn limit_error(&self, mut response: Vec<u8>, client: IpAddr) -> Option<Vec<u8>> {
        match self.limiter.verdict(client, token_kind::ERROR, 0) {
            Verdict::Send => Some(response),
            Verdict::Slip => {
                response[2] |= FLAG1_TC;
                Some(response)
            }
            Verdict::Drop => None,
        }
    }

    /// What a UDP answer is counted against (see `dns_common::rrl`): the question, but
    /// the zone for the NXDOMAIN the fast path makes for a zone's absent names, and the
    /// zone (or nothing) for errors.
    fn rate_token(&self, query: &Query<'_>, rcode: u16) -> (u8, u32) {
        let by_name = || (token_kind::NAME, key_check(query.name.as_bytes(), query.qtype.to_be_bytes()));
        let name = || name_from_wire(query.name.as_bytes()).ok();
        match rcode {
            rcode::NXDOMAIN => match name().and_then(|n| self.resolver.covering_zone(&n)) {
                Some(zone) => (token_kind::ZONE_NXDOMAIN, zone as u32),
                None => by_name(),
            },
            rcode::NOERROR => by_name(),
            _ => {
                let zone = name().and_then(|n| Some(self.resolver.catalog()?.find_zone(&n)?.id));
                (token_kind::ERROR, zone.map_or(0, |z| z as u32))
            }
        }
    }

    /// An error response with `rcode` to a query that parsed.
    pub(super) fn error_to(&self, msg: &[u8], query: &Query<'_>, rcode: u16) -> Option<Vec<u8>> {
        let question_len = query.question.len();
        self.reject(
            msg,
            &Rejection::Error { id: query.id, flags: query.flags, rcode, question_len, edns: query.edns },
        )
    }

    pub(super) fn reject(&self, msg: &[u8], rejection: &Rejection) -> Option<Vec<u8>> {
        self.reject_carrying(msg, rejection, None)
    }

    /// The same for a query from `client`: a client cookie in its OPT record gets our
    /// server cookie back with the error, as with an answer (RFC 7873 section 5.2).
    /// Also says whether a valid server cookie proved the client's address.
    fn reject_from(&self, msg: &[u8], rejection: &Rejection, client: IpAddr) -> (Option<Vec<u8>>, bool) {
        let sent = match rejection {
            Rejection::Error { edns: Some(edns), .. } => edns.cookie,
            _ => None,
        };
        let (cookie, proven) = self.server_cookie(sent, client);
        (self.reject_carrying(msg, rejection, cookie.as_ref()), proven)
    }

    fn reject_carrying(
        &self,
        msg: &[u8],
        rejection: &Rejection,
        cookie: Option<&[u8; COOKIE_DATA_LEN]>,
    ) -> Option<Vec<u8>> {
        if let Rejection::Error { rcode, .. } = rejection {
            self.count_rcode(*rcode);
        }
        error_response(msg, rejection, self.edns_payload, cookie)
    }

    /// The COOKIE option data a response to `sent` carries (the client cookie and our
    /// server cookie), counted by what the server cookie sent was worth, and whether it
    /// proved the client's address (RFC 7873 section 5.2).
    fn server_cookie(
        &self,
        sent: Option<CookieOption>,
        client: IpAddr,
    ) -> (Option<[u8; COOKIE_DATA_LEN]>, bool) {
        let Some((cookie, check)) = sent.and_then(|c| self.cookies.respond(&c, client)) else {
            return (None, false);
        };
        self.stats.cookies[check as usize].fetch_add(1, Ordering::Relaxed);
        (Some(cookie), check.is_valid())
    }

    /// The response to `query`, leaving `reserve` bytes of the UDP limit free (for a TSIG
    /// record); over UDP within the rate limit (None: dropped).
    async fn respond(
        &self,
        query: &Query<'_>,
        transport: Transport,
        client: IpAddr,
        reserve: usize,
    ) -> Option<Vec<u8>> {
        let type_index =
            QTYPE_LABELS.iter().position(|(_, t)| *t == query.qtype).unwrap_or(QTYPE_LABELS.len() - 1);
        self.stats.by_type[type_index].fetch_add(1, Ordering::Relaxed);
        let (answer, scope) = self.answer(query, transport, client).await;
        self.count_rcode(answer.rcode);
        let limit = match transport {
            Transport::Udp => Some(
                (udp_response_limit(query.edns.map(|e| e.payload), self.edns_payload) as usize)
                    .saturating_sub(reserve),
            ),
            Transport::Tcp => None,
        };
        let (cookie, proven) = self.server_cookie(query.edns.and_then(|e| e.cookie), client);
        let echo = Echo { subnet_scope: scope, cookie };
        // The token is worked out only when something is limited (RRL on, client unproven).
        if transport == Transport::Udp && !proven && self.limiter.is_on() {
            let (kind, token) = self.rate_token(query, answer.rcode);
            match self.limiter.verdict(client, kind, token) {
                Verdict::Send => {}
                Verdict::Slip => return Some(truncated_response(query, &answer, self.edns_payload, &echo)),
                Verdict::Drop => return None,
            }
        }
        let rotation = self.rotation.fetch_add(1, Ordering::Relaxed);
        let response = response(query, &answer, self.edns_payload, limit, rotation, &echo);
        if response.len() > 2 && response[2] & FLAG1_TC != 0 {
            self.stats.truncated.fetch_add(1, Ordering::Relaxed);
        }
        Some(response)
    }

    /// A TSIG-signed query (RFC 8945 section 5.2): a good signature from a key allowed
    /// to query the name (or an updater asking for its zone's SOA, see
    /// [`crate::model::key::KeyScope::locates`]) gets the answer, signed; see
    /// [`Handler::check_signature`] for the rest.
    async fn handle_signed(
        &self,
        msg: &[u8],
        query: &Query<'_>,
        signature: &TsigRecord<'_>,
        transport: Transport,
        client: IpAddr,
    ) -> Option<Vec<u8>> {
        let key = match self.check_signature(msg, signature, client, |rcode| self.error_to(msg, query, rcode))
        {
            Ok(key) => key,
            Err(response) => return response,
        };
        let catalog = self.resolver.catalog();
        let allowed = match (catalog.as_ref(), name_from_wire(query.name.as_bytes())) {
            (Some(catalog), Ok(name)) => catalog.find_zone(&name).is_some_and(|z| {
                key.scope.allows(Operation::Query, &z.apex, &name)
                    || (query.qtype == TYPE_SOA && name == z.apex && key.scope.locates(&z.apex))
            }),
            _ => false,
        };
        let mut response = if allowed {
            self.count_tsig(TsigOutcome::Verified);
            self.respond(query, transport, client, tsig::signed_record_len(&key.tsig, 0)).await?
        } else {
            tracing::info!(key = %key.name, %client, name = ?query.name, "signed query outside the key's scope: refused");
            self.count_tsig(TsigOutcome::OutOfScope);
            self.error_to(msg, query, rcode::REFUSED)?
        };
        sign_response(&mut response, &key, signature);
        Some(response)
    }

    /// Checks a request's TSIG record (RFC 8945 section 5.2): the key if the MAC and
    /// time are good; otherwise the response (`error` makes the base message for an
    /// RCODE): an unknown key or a bad MAC gets NOTAUTH with an unsigned BADKEY or
    /// BADSIG record, a time outside the window NOTAUTH with a signed BADTIME record
    /// carrying our time, a MAC of an impossible length FORMERR.
    pub(super) fn check_signature(
        &self,
        msg: &[u8],
        signature: &TsigRecord<'_>,
        client: IpAddr,
        error: impl Fn(u16) -> Option<Vec<u8>>,
    ) -> Result<Arc<Key>, Option<Vec<u8>>> {
        let catalog = self.resolver.catalog();
        let key = catalog.as_ref().and_then(|c| c.keys.get(&signature.key_name).cloned());
        let now = unix_now().max(0) as u64;
        let key_name = display_wire_name(&signature.key_name);
        match (tsig::verify(msg, signature, key.as_ref().map(|k| &k.tsig), now), key) {
            (Ok(()), Some(key)) => Ok(key),
            (Err(TsigFailure::BadTime), Some(key)) => {
                tracing::info!(key = key_name, %client, skew = now as i64 - signature.time_signed as i64, "TSIG time outside the window");
                self.count_tsig(TsigOutcome::BadTime);
                let Some(mut response) = error(rcode::NOTAUTH) else { return Err(None) };
                let our_time = tsig::time_bytes(now);
                tsig::sign(
                    &mut response,
                    &key.tsig,
                    signature.mac,
                    signature.time_signed,
                    tsig::error::BADTIME,
                    &our_time,
                );
                Err(Some(response))
            }
            (Err(TsigFailure::Malformed), _) => {
                self.count_tsig(TsigOutcome::Malformed);
                Err(error(rcode::FORMERR))
            }
            (result, _) => {
                let failure = result.err().unwrap_or(TsigFailure::BadKey);
                tracing::info!(key = key_name, %client, ?failure, "TSIG check failed");
                self.count_tsig(if failure == TsigFailure::BadSig {
                    TsigOutcome::BadSig
                } else {
                    TsigOutcome::BadKey
                });
                let Some(mut response) = error(rcode::NOTAUTH) else { return Err(None) };
                tsig::append_unsigned_error(&mut response, signature, failure.error_code());
                Err(Some(response))
            }
        }
    }

    pub(super) fn count_tsig(&self, outcome: TsigOutcome) {
        self.stats.tsig[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The answer for `client` and the ECS scope it holds for (RFC 7871; 0 unless the
    /// answer is directional).
    async fn answer(
        &self,
        query: &Query<'_>,
        transport: Transport,
        client: IpAddr,
    ) -> (Arc<EncodedAnswer>, u8) {
        if query.qclass != CLASS_IN {
            return (Arc::new(EncodedAnswer::refused()), 0);
        }
        match RecordType::from(query.qtype) {
            // AXFR is offered over TCP only, IXFR over UDP gets its SOA before this (see
            // `super::transfer`).
            RecordType::AXFR | RecordType::IXFR => return (Arc::new(EncodedAnswer::refused()), 0),
            // MAILA and MAILB are obsolete (RFC 883), TKEY key agreement (RFC 2930) is
            // not offered: not implemented.
            RecordType::Unknown(253) | RecordType::Unknown(254) | RecordType::Unknown(249) => {
                return (Arc::new(EncodedAnswer::empty(rcode::NOTIMP, false)), 0);
            }
            _ => {}
        }
        let key = CacheKey::new(query.name.as_bytes(), query.qtype);
        let steered = match self.cache.lookup(&key) {
            Some(answer) => {
                self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
                if transport == Transport::Udp {
                    self.cache.ensure_in_kernel(&key);
                }
                answer
            }
            None => self.resolve_miss(&key).await,
        };
        self.choose(&steered, query, client)
    }

    /// The variant of `steered` for this client (its territory from the ECS option if
    /// there is one, else from its address) and the ECS scope.
    fn choose(&self, steered: &Steered, query: &Query<'_>, client: IpAddr) -> (Arc<EncodedAnswer>, u8) {
        let (territory, scope) = match steered.choice {
            VariantChoice::Directional => match self.resolver.catalog() {
                Some(catalog) => match query.edns.and_then(|e| e.client_subnet) {
                    Some(subnet) => catalog.territories.lookup_subnet(subnet.addr(), subnet.source_len),
                    None => (catalog.territories.lookup(client), 0),
                },
                None => (0, 0),
            },
            _ => (0, 0),
        };
        let picks = self.picks.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        (steered.choose(territory, picks).clone(), scope)
    }

    /// A query's miss: concurrent identical misses share one resolution; one that may
    /// need the database spends its zone's lookup budget, and over it gets the stale
    /// answer or SERVFAIL.
    async fn resolve_miss(&self, key: &CacheKey) -> Arc<Steered> {
        let cell = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
            in_flight.entry(key.clone()).or_default().clone()
        };
        let answer = cell
            .get_or_init(|| async {
                let over_budget = name_from_wire(key.name())
                    .ok()
                    .and_then(|name| self.resolver.database_zone(&name))
                    .is_some_and(|zone| !self.budget.take(zone));
                if over_budget {
                    self.stats.over_budget.fetch_add(1, Ordering::Relaxed);
                    return self.stale_or_servfail(key);
                }
                self.resolve_and_cache(key, false).await
            })
            .await
            .clone();
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if in_flight.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            in_flight.remove(key);
        }
        answer
    }

    /// What a query gets when its answer cannot be resolved now: the stale answer if one
    /// may still be served (RFC 8767), else SERVFAIL.
    fn stale_or_servfail(&self, key: &CacheKey) -> Arc<Steered> {
        if let Some(stale) = self.cache.extend_stale(key, self.policy.stale_max, self.policy.stale_answer_ttl)
        {
            self.stats.stale.fetch_add(1, Ordering::Relaxed);
            return stale;
        }
        Arc::new(Steered::fixed(Arc::new(EncodedAnswer::empty(rcode::SERVFAIL, false))))
    }

    /// Resolves `key` afresh and caches (and installs) the answer if cacheable; when
    /// `replacing` a cached answer, an uncacheable one removes it. While the database is
    /// unreachable, a recently expired answer is served again instead (RFC 8767); with
    /// none, SERVFAIL.
    async fn resolve_and_cache(&self, key: &CacheKey, replacing: bool) -> Arc<Steered> {
        let epoch = self.cache.epoch();
        let fail = |rcode| Arc::new(Steered::fixed(Arc::new(EncodedAnswer::empty(rcode, false))));
        let name = match name_from_wire(key.name()) {
            Ok(name) => name,
            Err(e) => {
                tracing::debug!(error = %e, "undecodable question name");
                return fail(rcode::FORMERR);
            }
        };
        let resolved = match self.resolve_variants(&name, key.qtype()).await {
            Ok(r) => r,
            Err(e) => {
                if let ResolveError::Store(e) = &e
                    && e.is_unavailable()
                {
                    tracing::debug!(error = %e, %name, "database unavailable; stale answer or SERVFAIL");
                    return self.stale_or_servfail(key);
                }
                tracing::warn!(error = %e, %name, "lookup failed; answering SERVFAIL");
                return fail(rcode::SERVFAIL);
            }
        };
        let Resolved { steered, cache_ttl, tags, synthesized_below } = resolved;
        let steered = Arc::new(steered);
        if let (Some(encloser), Some(ttl)) = (&synthesized_below, cache_ttl) {
            let hash = self.resolver.known_names().hash(encloser);
            // It depends on what the name's answer does, but the name itself.
            let question = Tag::Name(name.to_ascii());
            let wildcard_tags: Vec<Tag> = tags.iter().filter(|t| **t != question).cloned().collect();
            let ttl = ttl.min(self.policy.max_cache);
            self.cache.insert_wildcard(hash, key.qtype(), &steered, ttl, wildcard_tags, epoch);
        }
        // The kernel answers a name that does not exist with its zone's NXDOMAIN itself:
        // no map entry per name, so a flood of such names evicts nothing.
        let in_kernel = !(is_bare_nxdomain(&steered) && self.resolver.negatives_cover(&name));
        match cache_ttl {
            Some(ttl) => self.cache.insert_where(
                key.clone(),
                steered.clone(),
                ttl.min(self.policy.max_cache),
                tags,
                epoch,
                in_kernel,
            ),
            None if replacing => self.cache.remove(std::slice::from_ref(key)),
            None => {}
        }
        steered
    }

    /// Resolves every variant of the answer: (the answer, its cache TTL, its tags).
    async fn resolve_variants(&self, name: &Name, qtype: u16) -> Result<Resolved, ResolveError> {
        let rtype = RecordType::from(qtype);
        let first = self.resolver.resolve(name, rtype).await?;
        let encode_one = |r: &Resolution| -> Result<Arc<EncodedAnswer>, ResolveError> {
            Ok(Arc::new(encode(name, qtype, r.rcode, r.authoritative, &r.sections, r.rotate.clone())?))
        };
        let default = encode_one(&first)?;
        let (mut cache_ttl, mut tags) = (first.cache_ttl, first.tags.clone());
        let mut merge = |r: &Resolution| {
            cache_ttl = match (cache_ttl, r.cache_ttl) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            };
            for t in &r.tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        };
        let steered = match &first.variation {
            None => Steered::fixed(default),
            Some(Variation::Weighted(weights)) => {
                let mut variants = vec![default];
                for i in 1..weights.len() {
                    let r = self.resolver.resolve_selected(name, rtype, Selection::Pick(i as u8)).await?;
                    merge(&r);
                    variants.push(encode_one(&r)?);
                }
                Steered { variants, choice: VariantChoice::Weighted(pick_bounds(weights)) }
            }
            Some(Variation::Directional(territories)) => {
                let highest = self.resolver.catalog().map_or(0, |c| c.territories.highest_index());
                let mut variants = vec![default.clone(); highest as usize + 1];
                for t in territories {
                    let r = self.resolver.resolve_selected(name, rtype, Selection::Territory(*t)).await?;
                    merge(&r);
                    if let Some(slot) = variants.get_mut(*t as usize) {
                        *slot = encode_one(&r)?;
                    }
                }
                Steered { variants, choice: VariantChoice::Directional }
            }
        };
        // A wildcard's answer whose bytes do not depend on the name serves every name
        // below the closest encloser: encoded again for another name, it is the same.
        let below = first.synthesized_below.clone().filter(|encloser| {
            matches!(steered.choice, VariantChoice::Fixed)
                && position_independent(&first, name, encloser, qtype, &steered.variants[0])
        });
        Ok(Resolved { steered, cache_ttl, tags, synthesized_below: below })
    }

    /// Replaces a cached answer after a database change (so hot names stay in the fast
    /// path). Call after [`AnswerCache::begin_invalidation`].
    pub async fn refresh(&self, key: &CacheKey) {
        self.resolve_and_cache(key, true).await;
    }

    /// Publishes what the fast path's NXDOMAIN answers need: the changes of the known
    /// names (call before re-resolving the answers a change affects, so a new name is
    /// never denied), each enumerable zone's NXDOMAIN, and the lease.
    pub fn publish_negatives(&self) {
        let (changes, trusted, seed) = {
            let mut known = self.resolver.known_names();
            let incomplete = !self.cache.negatives_complete();
            if incomplete && known.is_ready() {
                known.republish_all();
            }
            let changes = known.take_pending();
            if !known.is_ready() {
                // Untrusted names: stop the kernel's negative answers before anything else.
                self.cache.renew_negative_lease(false, known.seed());
            }
            if self.cache.publish_known(&changes) && incomplete && known.is_ready() {
                self.cache.set_negatives_complete();
            }
            (changes.len(), known.is_ready(), known.seed())
        };
        if let Some(catalog) = self.resolver.catalog() {
            let zones: Vec<(u32, Option<Arc<Steered>>)> = catalog
                .zones()
                .map(|zone| {
                    let covered = trusted && self.resolver.known_names().is_enumerable(zone.id);
                    (zone.id as u32, covered.then(|| zone_nxdomain(zone)).flatten())
                })
                .collect();
            self.cache.set_zone_negatives(&zones);
        }
        self.cache.renew_negative_lease(trusted, seed);
        tracing::trace!(changes, trusted, "published the known names");
    }

    /// Takes over the names an earlier daemon published in pinned maps: their hashes'
    /// seed now, and after the names are rebuilt ([`Handler::prune_adopted_names`]) the
    /// removal of those that went away meanwhile.
    pub fn adopt_published_names(&self) {
        if let Some(seed) = self.cache.kernel_negative_seed() {
            self.resolver.known_names().adopt_seed(seed);
        }
    }

    /// Removes from the kernel the adopted names that no longer exist.
    pub fn prune_adopted_names(&self) {
        let known = self.resolver.known_names();
        if !known.is_ready() {
            return;
        }
        let pruned = self.cache.prune_known_names(|hash| known.contains_hash(hash));
        if pruned > 0 {
            tracing::info!(pruned, "removed names that went away while no daemon followed the database");
        }
    }

    /// Renews the kernel's trust in the published names (a periodic tick).
    pub fn renew_negatives(&self) {
        let (trusted, seed) = {
            let known = self.resolver.known_names();
            (known.is_ready(), known.seed())
        };
        self.cache.renew_negative_lease(trusted, seed);
    }

    pub(super) fn count_rcode(&self, rcode: u16) {
        if let Some(c) = self.stats.rcodes.get(rcode as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Signs a response to a verified request with its key, over the request's MAC, now.
pub(super) fn sign_response(response: &mut Vec<u8>, key: &Key, request: &TsigRecord<'_>) {
    let now = unix_now().max(0) as u64;
    tsig::sign(response, &key.tsig, request.mac, now, tsig::error::NOERROR, &[]);
}

/// A single NXDOMAIN with nothing but the SOA (see `protocol::answer::is_bare_nxdomain`).
fn is_bare_nxdomain(answer: &Steered) -> bool {
    answer.variants.len() == 1 && {
        let a = answer.first();
        a.rcode == rcode::NXDOMAIN && a.counts == [0, 1, 0]
    }
}

/// The NXDOMAIN every name of `zone` that does not exist gets (the same bytes whatever
/// the question: see `protocol::answer::encode`).
fn zone_nxdomain(zone: &Zone) -> Option<Arc<Steered>> {
    let sections = Sections { authority: vec![zone.negative_soa()], ..Default::default() };
    match encode(&zone.apex, 1, rcode::NXDOMAIN, true, &sections, None) {
        Ok(answer) => Some(Arc::new(Steered::fixed(Arc::new(answer)))),
        Err(e) => {
            tracing::warn!(error = %e, zone = %zone.apex, "encoding the zone's NXDOMAIN failed");
            None
        }
    }
}

/// Whether `resolution` (synthesized for `name` below `encloser`) encodes to the same
/// bytes for another name below it, of another length: then one answer serves them all.
fn position_independent(
    resolution: &Resolution,
    name: &Name,
    encloser: &Name,
    qtype: u16,
    encoded: &EncodedAnswer,
) -> bool {
    // One label below the encloser, of a length that makes another name length.
    let (name_len, encloser_len) =
        (crate::protocol::name::wire_len(name), crate::protocol::name::wire_len(encloser));
    let label = if name_len == encloser_len + 2 { "ww" } else { "w" };
    let Ok(other) = encloser.prepend_label(label) else { return false };
    let rename = |records: &[hickory_proto::rr::Record]| -> Vec<hickory_proto::rr::Record> {
        records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if r.name == *name {
                    r.name = other.clone();
                }
                r
            })
            .collect()
    };
    let sections = Sections {
        answers: rename(&resolution.sections.answers),
        authority: rename(&resolution.sections.authority),
        additional: rename(&resolution.sections.additional),
        required_additional: resolution.sections.required_additional,
    };
    encode(&other, qtype, resolution.rcode, resolution.authoritative, &sections, resolution.rotate.clone())
        .is_ok_and(|again| again.data == encoded.data && again.rotate == encoded.rotate)
}
