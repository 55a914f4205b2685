//! The userspace answer cache: every cacheable answer userspace produced, keyed exactly
//! as the XDP program keys its maps (lower-cased wire QNAME + QTYPE), indexed by the
//! tags of what it depends on, and mirrored into the kernel maps (through the fast-path
//! owner, [`crate::fastpath::KernelMaps`]) when the kernel can serve it. It serves
//! userspace hits too (TCP, oversized UDP, XDP detached), with the same expiry as the
//! kernel.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use dns_common::stats::Outcome;

use dns_common::negative::WildcardKey;

use crate::{
    fastpath::{KernelMaps, MapUsage, MapsError, kernel_can_serve, kernel_can_serve_any, monotonic_ns},
    model::Prefix,
    protocol::{CacheKey, Steered},
    resolution::Tag,
};

/// The entries, the index from tags to the entries carrying them, and the CLOCK rings
/// that choose what to evict (positive and negative answers apart, so a flood of
/// negative answers never evicts a positive one).
#[derive(Default)]
struct Entries {
    map: HashMap<CacheKey, Cached>,
    by_tag: HashMap<Tag, HashSet<CacheKey>>,
    clocks: [std::collections::VecDeque<CacheKey>; 2],
    /// Entries per ring.
    counts: [usize; 2],
}

/// The ring of an answer: 0 positive, 1 negative (NXDOMAIN, NODATA).
fn ring_of(answer: &Steered) -> usize {
    let first = answer.first();
    usize::from(first.counts[0] == 0 && matches!(first.rcode, 0 | 3))
}

impl Entries {
    fn insert(&mut self, key: CacheKey, cached: Cached) -> Option<Cached> {
        let tags = cached.tags.clone();
        let ring = ring_of(&cached.answer);
        let old = self.map.insert(key.clone(), cached);
        if let Some(old) = &old {
            self.unindex(&key, old, Some(&tags));
            self.counts[ring_of(&old.answer)] -= 1;
        }
        self.counts[ring] += 1;
        if old.as_ref().is_none_or(|o| ring_of(&o.answer) != ring) {
            self.clocks[ring].push_back(key.clone());
        }
        for tag in tags.iter() {
            self.by_tag.entry(tag.clone()).or_default().insert(key.clone());
        }
        old
    }

    fn remove(&mut self, key: &CacheKey) -> Option<Cached> {
        let old = self.map.remove(key)?;
        self.counts[ring_of(&old.answer)] -= 1;
        self.unindex(key, &old, None);
        Some(old)
    }

    /// Chooses the entry of `ring` to evict (CLOCK: a recently used entry gets a second
    /// chance) and removes it.
    fn evict(&mut self, ring: usize) -> Option<(CacheKey, Cached)> {
        // Each entry is passed at most twice (once with its bit set, once without);
        // keys of entries removed since are skipped.
        for _ in 0..self.clocks[ring].len() * 2 + 1 {
            let key = self.clocks[ring].pop_front()?;
            let Some(cached) = self.map.get(&key) else { continue };
            if ring_of(&cached.answer) != ring {
                continue;
            }
            if cached.used.swap(false, Ordering::Relaxed) {
                self.clocks[ring].push_back(key);
                continue;
            }
            let cached = self.remove(&key)?;
            return Some((key, cached));
        }
        None
    }

    /// Drops ring keys of entries gone, when they have piled up.
    fn compact(&mut self) {
        for ring in 0..2 {
            if self.clocks[ring].len() > 2 * self.counts[ring] + 1024 {
                let map = &self.map;
                self.clocks[ring].retain(|k| map.get(k).is_some_and(|c| ring_of(&c.answer) == ring));
            }
        }
    }

    /// Drops `key` from the index sets of `old`'s tags (but those it still carries).
    fn unindex(&mut self, key: &CacheKey, old: &Cached, keep: Option<&Arc<[Tag]>>) {
        for tag in old.tags.iter() {
            if keep.is_some_and(|k| k.contains(tag)) {
                continue;
            }
            if let Some(set) = self.by_tag.get_mut(tag) {
                set.remove(key);
                if set.is_empty() {
                    self.by_tag.remove(tag);
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
struct Cached {
    answer: Arc<Steered>,
    expires_ns: u64,
    /// Once served stale: the end of its stale-serving time (its first expiry plus the
    /// policy's `stale_max`), however often it is served stale again.
    stale_until: Option<u64>,
    tags: Arc<[Tag]>,
    /// The answer slot the kernel's name entry points at, if installed.
    slot: Option<u32>,
    /// Whether the kernel should hold it.
    in_kernel: bool,
    /// Served since the CLOCK hand last passed it.
    used: Arc<std::sync::atomic::AtomicBool>,
}

/// Default bound of the userspace cache.
pub const DEFAULT_CACHE_ENTRIES: usize = 1 << 20;

/// How long answers live in the cache and how stale ones are served (the `[ttl]` table
/// of the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachePolicy {
    /// Longest an answer stays in the cache and the XDP maps, whatever its TTL.
    pub max_cache: u32,
    /// TTL of a stale answer served again while the database cannot be reached (RFC 8767
    /// section 4 recommends 30 s).
    pub stale_answer_ttl: u32,
    /// How long after expiry an answer may still be served stale (RFC 8767 suggests one
    /// to three days; an hour keeps memory bounded).
    pub stale_max: Duration,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self { max_cache: 86_400, stale_answer_ttl: 30, stale_max: Duration::from_secs(3600) }
    }
}

pub struct AnswerCache {
    entries: RwLock<Entries>,
    max_entries: usize,
    /// Most negative answers held, within `max_entries`.
    max_negative: usize,
    kernel: Option<Mutex<KernelMaps>>,
    /// Entries evicted to make room.
    stats_evicted: AtomicU64,
    /// Bumped by every invalidation: an answer resolved before a change is not cached
    /// after it (see [`AnswerCache::epoch`]).
    epoch: AtomicU64,
    /// The kernel holds every known name: its negative answers may be trusted.
    negatives_complete: std::sync::atomic::AtomicBool,
    negative_lease: Duration,
    /// Answers synthesized from wildcards, installed for every name below their
    /// closest encloser (see `dns_common::negative::WildcardKey`).
    wildcards: Mutex<HashMap<WildcardKey, WildcardCached>>,
}

struct WildcardCached {
    tags: Arc<[Tag]>,
    expires_ns: u64,
    slot: Option<u32>,
}

/// Most wildcard answers held (the kernel's map holds as many).
const MAX_WILDCARDS: usize = dns_common::negative::MAX_WILDCARD_ANSWERS as usize;

/// Negative answers may take at most 1/NEGATIVE_SHARE of the cache.
pub const NEGATIVE_SHARE: usize = 4;

/// How long the kernel trusts the published names without a renewal.
pub const NEGATIVE_LEASE: Duration = Duration::from_secs(10);
/// Known-name changes written per hold of the kernel lock.
const KNOWN_WRITE_CHUNK: usize = 4096;

impl AnswerCache {
    pub fn new(max_entries: usize, kernel: Option<KernelMaps>) -> Self {
        Self {
            entries: RwLock::new(Entries::default()),
            max_entries,
            max_negative: (max_entries / NEGATIVE_SHARE).max(1),
            kernel: kernel.map(Mutex::new),
            stats_evicted: Default::default(),
            epoch: Default::default(),
            negatives_complete: std::sync::atomic::AtomicBool::new(true),
            negative_lease: NEGATIVE_LEASE,
            wildcards: Mutex::new(HashMap::new()),
        }
    }

    /// Installs an answer synthesized from the wildcard below closest encloser
    /// `encloser` (its hash) for `qtype`: the kernel answers every other name below it
    /// that does not exist the same way. `tags`: what it depends on.
    pub fn insert_wildcard(
        &self,
        encloser: u64,
        qtype: u16,
        answer: &Arc<Steered>,
        ttl: u32,
        tags: Vec<Tag>,
        epoch: u64,
    ) {
        let Some(kernel) = &self.kernel else { return };
        if ttl == 0 || !kernel_can_serve_any(answer) {
            return;
        }
        let key = WildcardKey { encloser, qtype: qtype.to_be_bytes(), _pad: [0; 6] };
        let expires_ns = monotonic_ns() + Duration::from_secs(ttl.into()).as_nanos() as u64;
        // The same lock order as everywhere: entries, then the kernel.
        let _entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        let mut wildcards = self.wildcards.lock().unwrap_or_else(|p| p.into_inner());
        if wildcards.len() >= MAX_WILDCARDS && !wildcards.contains_key(&key) {
            return;
        }
        let previous = wildcards.get(&key).and_then(|w| w.slot);
        let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
        match kernel.install_wildcard(key, answer, expires_ns, previous) {
            Ok(slot) => {
                wildcards.insert(key, WildcardCached { tags: tags.into(), expires_ns, slot: Some(slot) });
            }
            Err(e) => {
                tracing::warn!(error = %e, "installing a wildcard answer in the fast path failed");
                kernel.remove_wildcard(&key, previous);
                wildcards.remove(&key);
            }
        }
    }

    /// Removes the wildcard answers that carry one of `tags`, or have expired.
    fn drop_wildcards(&self, tags: &HashSet<&Tag>, now: u64) {
        let mut wildcards = self.wildcards.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<WildcardKey> = wildcards
            .iter()
            .filter(|(_, w)| w.expires_ns <= now || w.tags.iter().any(|t| tags.contains(t)))
            .map(|(k, _)| *k)
            .collect();
        if gone.is_empty() {
            return;
        }
        let Some(kernel) = &self.kernel else { return };
        let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
        for key in gone {
            if let Some(w) = wildcards.remove(&key) {
                kernel.remove_wildcard(&key, w.slot);
            }
        }
    }

    /// The same with another lease for the kernel's negative answers (tests that run
    /// packets without a daemon renewing it).
    pub fn with_negative_lease(mut self, lease: Duration) -> Self {
        self.negative_lease = lease;
        self
    }

    /// Writes known-name changes into the kernel; false if the kernel could not take
    /// them all (its map is full): its negative answers stay off until it holds them.
    pub fn publish_known(&self, changes: &[(u64, Option<dns_common::negative::KnownName>)]) -> bool {
        let Some(kernel) = &self.kernel else { return true };
        let mut complete = true;
        for chunk in changes.chunks(KNOWN_WRITE_CHUNK) {
            let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
            for (hash, known) in chunk {
                if let Err(e) = kernel.set_known_name(*hash, *known) {
                    if complete {
                        tracing::error!(error = %e, "the fast path's known-name map is full: raise [maps] known_names; NXDOMAIN answers come from userspace");
                    }
                    complete = false;
                }
            }
        }
        if !complete {
            self.negatives_complete.store(false, Ordering::Release);
        }
        complete
    }

    /// The hash seed of names the kernel already holds (adopted pinned maps), if any.
    pub fn kernel_negative_seed(&self) -> Option<u64> {
        let kernel = self.kernel.as_ref()?;
        Some(kernel.lock().unwrap_or_else(|p| p.into_inner()).negative_seed()).filter(|s| *s != 0)
    }

    /// Removes from the kernel the names `keep` rejects; returns how many.
    pub fn prune_known_names(&self, keep: impl Fn(u64) -> bool) -> usize {
        let Some(kernel) = &self.kernel else { return 0 };
        kernel.lock().unwrap_or_else(|p| p.into_inner()).prune_known_names(keep)
    }

    /// Whether the kernel holds every published name.
    pub fn negatives_complete(&self) -> bool {
        self.negatives_complete.load(Ordering::Acquire)
    }

    /// Marks the kernel as holding every name again (after a full republish).
    pub fn set_negatives_complete(&self) {
        self.negatives_complete.store(true, Ordering::Release);
    }

    /// Sets each zone's NXDOMAIN answer (None: the kernel makes no negative answers in
    /// it); zones not listed lose theirs.
    pub fn set_zone_negatives(&self, zones: &[(u32, Option<Arc<Steered>>)]) {
        self.write_kernel("setting the zones' NXDOMAIN answers", |kernel| {
            for gone in kernel.negative_zones() {
                if !zones.iter().any(|(z, a)| *z == gone && a.is_some()) {
                    kernel.set_zone_negative(gone, None)?;
                }
            }
            for (zone, answer) in zones {
                kernel.set_zone_negative(*zone, answer.as_ref())?;
            }
            Ok(())
        });
    }

    /// Lets the kernel make negative answers for a lease more (or stops it).
    pub fn renew_negative_lease(&self, trusted: bool, seed: u64) {
        let until = if trusted && self.negatives_complete() {
            monotonic_ns() + self.negative_lease.as_nanos() as u64
        } else {
            0
        };
        self.write_kernel("renewing the negative-answer lease", |kernel| {
            kernel.set_negative_lease(until, seed)
        });
    }

    /// Makes the kernel's territory tries hold these (prefix, territory index).
    pub fn set_territories(&self, prefixes: &[(Prefix, u8)]) {
        self.write_kernel("the territory prefixes", |k| k.set_territories(prefixes));
    }

    /// Makes the fast path answer only frames to these addresses.
    pub fn set_local_addresses(&self, addresses: &[IpAddr]) {
        self.write_kernel("the local addresses", |k| k.set_local_addresses(addresses));
    }

    /// Records the MAC of an interface the fast path is attached to.
    pub fn set_interface_mac(&self, ifindex: u32, mac: [u8; 6]) {
        self.write_kernel("an interface's MAC", |k| k.set_interface_mac(ifindex, mac));
    }

    /// Runs a write of the kernel maps, if the fast path is loaded, logging a failure.
    fn write_kernel(&self, what: &str, write: impl FnOnce(&mut KernelMaps) -> Result<(), MapsError>) {
        let Some(kernel) = &self.kernel else { return };
        if let Err(e) = write(&mut kernel.lock().unwrap_or_else(|p| p.into_inner())) {
            tracing::warn!(error = %e, "writing {what} to the fast path failed");
        }
    }

    pub fn has_kernel(&self) -> bool {
        self.kernel.is_some()
    }

    /// A fresh cached answer for `key`.
    pub fn lookup(&self, key: &CacheKey) -> Option<Arc<Steered>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let cached = entries.map.get(key)?;
        cached.used.store(true, Ordering::Relaxed);
        (monotonic_ns() < cached.expires_ns).then(|| cached.answer.clone())
    }

    /// The current invalidation epoch: read it before resolving, and pass it to
    /// [`AnswerCache::insert`], which drops the answer if a change came in between.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches an answer for `ttl` seconds and, when the kernel can serve it, installs it
    /// in the maps so the next identical query is answered by XDP. Not cached if an
    /// invalidation happened since `epoch` was read (the answer may predate it).
    pub fn insert(&self, key: CacheKey, answer: Arc<Steered>, ttl: u32, tags: Vec<Tag>, epoch: u64) {
        self.insert_where(key, answer, ttl, tags, epoch, true);
    }

    /// The same; with `in_kernel` false the answer is kept in userspace only (the
    /// kernel makes it itself: a zone's NXDOMAIN).
    pub fn insert_where(
        &self,
        key: CacheKey,
        answer: Arc<Steered>,
        ttl: u32,
        tags: Vec<Tag>,
        epoch: u64,
        in_kernel: bool,
    ) {
        if ttl == 0 {
            return;
        }
        let expires_ns = monotonic_ns() + Duration::from_secs(ttl.into()).as_nanos() as u64;
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        // A new entry of its ring (a new key, or a key whose answer turns negative or
        // positive: the property test found a positive replaced by a negative passing
        // the negatives' share) in a full cache, or the negatives' share full: CLOCK
        // evicts an entry of the same ring. A negative answer never evicts a positive
        // one; a positive one evicts negatives only when no positive is left to evict.
        let ring = ring_of(&answer);
        let previous_ring = entries.map.get(&key).map(|c| ring_of(&c.answer));
        if previous_ring != Some(ring) {
            let full = previous_ring.is_none() && entries.map.len() >= self.max_entries;
            let negatives_full = ring == 1 && entries.counts[1] >= self.max_negative;
            if full || negatives_full {
                let from = match ring {
                    1 => (entries.counts[1] > 0).then_some(1),
                    _ if entries.counts[0] > 0 => Some(0),
                    _ => Some(1),
                };
                match from.and_then(|r| entries.evict(r)) {
                    Some((old_key, old)) => {
                        self.uninstall(&old_key, old.slot);
                        self.stats_evicted.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        tracing::debug!("userspace answer cache full; not caching");
                        return;
                    }
                }
            }
            entries.compact();
        }
        let previous = entries.map.get(&key).and_then(|c| c.slot);
        let slot = if in_kernel {
            self.install(&key, &answer, expires_ns, previous)
        } else {
            self.uninstall(&key, previous);
            None
        };
        let used = Arc::new(std::sync::atomic::AtomicBool::new(false));
        entries.insert(
            key,
            Cached { answer, expires_ns, stale_until: None, tags: tags.into(), slot, in_kernel, used },
        );
    }

    /// Records an entry the kernel already holds (adopted from an earlier daemon's pinned
    /// maps) until it is re-resolved: tagged [`Tag::Unresolved`], so any change reaches
    /// it from the first moment.
    pub fn adopt(&self, key: CacheKey, answer: Arc<Steered>, expires_ns: u64, slot: u32) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        entries.insert(
            key,
            Cached {
                answer,
                expires_ns,
                stale_until: None,
                tags: Arc::from([Tag::Unresolved]),
                slot: Some(slot),
                in_kernel: true,
                used: Default::default(),
            },
        );
    }

    /// Answers installed in the kernel's name maps (as far as this daemon knows; the
    /// kernel's LRU may have evicted some).
    pub fn installed(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .values()
            .filter(|c| c.slot.is_some())
            .count()
    }

    /// Adopts every name entry of the kernel's (pinned) maps; returns their keys.
    pub fn adopt_kernel_entries(&self) -> Vec<CacheKey> {
        let Some(kernel) = &self.kernel else { return Vec::new() };
        let (entries, answers) = {
            let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
            let entries = kernel.entries();
            let answers = kernel.adopt(&entries);
            (entries, answers)
        };
        let mut keys = Vec::with_capacity(entries.len());
        for ((key, entry), answer) in entries.into_iter().zip(answers) {
            if let Some(answer) = answer {
                self.adopt(key.clone(), answer, entry.expires_ns, entry.answer);
                keys.push(key);
            }
        }
        keys
    }

    /// Serves `key`'s stale answer again for `ttl` seconds, with its TTLs capped at `ttl`
    /// (kernel included), while the database is unreachable; returns it.
    pub fn extend_stale(&self, key: &CacheKey, max_stale: Duration, ttl: u32) -> Option<Arc<Steered>> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let now = monotonic_ns();
        let cached = entries.map.get(key)?;
        let stale_until = cached
            .stale_until
            .unwrap_or_else(|| cached.expires_ns.saturating_add(max_stale.as_nanos() as u64));
        if now >= stale_until {
            return None;
        }
        let answer = Arc::new(cached.answer.stale_copy(ttl));
        let (previous, in_kernel) = (cached.slot, cached.in_kernel);
        let expires_ns = (now + Duration::from_secs(ttl.into()).as_nanos() as u64).min(stale_until);
        let slot = if in_kernel { self.install(key, &answer, expires_ns, previous) } else { None };
        if let Some(c) = entries.map.get_mut(key) {
            c.expires_ns = expires_ns;
            c.stale_until = Some(stale_until);
            c.answer = answer.clone();
            c.slot = slot;
        }
        Some(answer)
    }

    /// Makes sure the kernel holds the cached answer for `key` (its LRU may have evicted
    /// it): called when a query the kernel could have answered reached userspace.
    pub fn ensure_in_kernel(&self, key: &CacheKey) {
        let Some(kernel) = &self.kernel else { return };
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let Some(cached) = entries.map.get_mut(key) else { return };
        if !cached.in_kernel || !kernel_can_serve(key, &cached.answer) {
            return;
        }
        let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
        if cached.slot.is_some() && kernel.contains(key) {
            return;
        }
        match kernel.install(key, &cached.answer, cached.expires_ns, cached.slot) {
            Ok(slot) => cached.slot = Some(slot),
            Err(e) => tracing::warn!(error = %e, ?key, "reinstalling an answer in the fast path failed"),
        }
    }

    /// Installs in the kernel if it can serve the answer; returns the slot used.
    fn install(
        &self,
        key: &CacheKey,
        answer: &Arc<Steered>,
        expires_ns: u64,
        previous: Option<u32>,
    ) -> Option<u32> {
        let kernel = self.kernel.as_ref()?;
        let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
        if !kernel_can_serve(key, answer) {
            kernel.remove(key, previous);
            return None;
        }
        match kernel.install(key, answer, expires_ns, previous) {
            Ok(slot) => Some(slot),
            Err(e) => {
                tracing::warn!(error = %e, ?key, "installing an answer in the fast path failed");
                kernel.remove(key, previous);
                None
            }
        }
    }

    fn uninstall(&self, key: &CacheKey, slot: Option<u32>) {
        if let Some(kernel) = &self.kernel {
            kernel.lock().unwrap_or_else(|p| p.into_inner()).remove(key, slot);
        }
    }

    /// Starts an invalidation: answers resolved before it will not be cached. Returns
    /// the keys of the answers carrying any of `tags`.
    pub fn begin_invalidation<'t>(&self, tags: impl IntoIterator<Item = &'t Tag>) -> Vec<CacheKey> {
        let entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        let tags: HashSet<&Tag> = tags.into_iter().collect();
        let mut keys: HashSet<CacheKey> = HashSet::new();
        for tag in &tags {
            if let Some(set) = entries.by_tag.get(*tag) {
                keys.extend(set.iter().cloned());
            }
        }
        // Wildcard answers are not refreshed: the next synthesized answer reinstalls.
        self.drop_wildcards(&tags, 0);
        keys.into_iter().collect()
    }

    /// The same for every answer (after missed changes): returns every key.
    pub fn begin_full_invalidation(&self) -> Vec<CacheKey> {
        let entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        // Every wildcard goes (expired before any time); the next answer reinstalls.
        self.drop_wildcards(&HashSet::new(), u64::MAX);
        entries.map.keys().cloned().collect()
    }

    /// Removes answers, from the cache and the kernel.
    pub fn remove(&self, keys: &[CacheKey]) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        for k in keys {
            if let Some(old) = entries.remove(k) {
                self.uninstall(k, old.slot);
            }
        }
    }

    /// Removes every answer carrying one of `tags`, from the cache and the kernel.
    pub fn invalidate(&self, tags: &[Tag]) -> usize {
        let keys = self.begin_invalidation(tags);
        self.remove(&keys);
        keys.len()
    }

    /// Drops entries expired more than `keep_stale` ago (and their kernel entries and
    /// answer slots); younger expired ones are kept to serve stale if the database
    /// goes down.
    pub fn sweep(&self, keep_stale: Duration) {
        let now = monotonic_ns();
        self.drop_wildcards(&HashSet::new(), now);
        self.remove_where(|c| {
            c.stale_until.unwrap_or(c.expires_ns.saturating_add(keep_stale.as_nanos() as u64)) <= now
        });
        if let Some(kernel) = &self.kernel {
            kernel.lock().unwrap_or_else(|p| p.into_inner()).reclaim_quarantine();
        }
    }

    fn remove_where(&self, pred: impl Fn(&Cached) -> bool) -> usize {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let keys: Vec<CacheKey> =
            entries.map.iter().filter(|(_, c)| pred(c)).map(|(k, _)| k.clone()).collect();
        for k in &keys {
            if let Some(old) = entries.remove(k) {
                self.uninstall(k, old.slot);
            }
        }
        keys.len()
    }

    /// The XDP outcome counters summed over CPUs, if the program is loaded.
    pub fn xdp_counters(&self) -> Option<Vec<(Outcome, u64)>> {
        let per_cpu = self.xdp_counters_per_cpu()?;
        Some(per_cpu.into_iter().map(|(o, counts)| (o, counts.iter().sum())).collect())
    }

    /// The XDP outcome counters of each CPU (index = CPU), if the program is loaded.
    pub fn xdp_counters_per_cpu(&self) -> Option<Vec<(Outcome, Vec<u64>)>> {
        let kernel = self.kernel.as_ref()?.lock().unwrap_or_else(|p| p.into_inner());
        Some(Outcome::ALL.iter().map(|o| (*o, kernel.counter_per_cpu(*o))).collect())
    }

    /// Capacity and kernel memory of the maps, if the program is loaded.
    pub fn map_usage(&self) -> Option<Vec<MapUsage>> {
        Some(self.kernel.as_ref()?.lock().unwrap_or_else(|p| p.into_inner()).usage())
    }

    /// (positive answers, negative answers, evictions so far).
    pub fn occupancy(&self) -> (usize, usize, u64) {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        (entries.counts[0], entries.counts[1], self.stats_evicted.load(Ordering::Relaxed))
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::EncodedAnswer;

    fn answer(positive: bool) -> Arc<Steered> {
        let mut a = EncodedAnswer::empty(if positive { 0 } else { 3 }, true);
        if positive {
            a.counts = [1, 0, 0];
            a.data = vec![0xc0, 0x0c];
        }
        Arc::new(Steered::fixed(Arc::new(a)))
    }

    fn key(i: usize) -> CacheKey {
        CacheKey::new(format!("\x05n{i:04}\x00").as_bytes(), 1)
    }

    #[test]
    fn a_flood_of_negatives_never_evicts_positives() {
        let cache = AnswerCache::new(16, None);
        for i in 0..16 {
            cache.insert(key(i), answer(true), 60, vec![], cache.epoch());
        }
        for i in 100..10_000 {
            cache.insert(key(i), answer(false), 60, vec![], cache.epoch());
        }
        let (positive, negative, _) = cache.occupancy();
        assert_eq!((positive, negative), (16, 0), "a full cache of positives takes no negative");
        assert!((0..16).all(|i| cache.lookup(&key(i)).is_some()));

        let cache = AnswerCache::new(16, None);
        for i in 0..8 {
            cache.insert(key(i), answer(true), 60, vec![], cache.epoch());
        }
        for i in 100..10_000 {
            cache.insert(key(i), answer(false), 60, vec![], cache.epoch());
        }
        let (positive, negative, evicted) = cache.occupancy();
        assert_eq!((positive, negative), (8, 16 / NEGATIVE_SHARE), "negatives keep to their share");
        assert!(evicted > 9000, "and evict each other");
        assert!(cache.lookup(&key(9_999)).is_some(), "the newest negative is cached");
    }

    /// An answer that says which insert made it (its data carries `id`).
    fn numbered(id: u32, positive: bool) -> Arc<Steered> {
        let mut a = EncodedAnswer::empty(if positive { 0 } else { 3 }, true);
        a.counts = [u16::from(positive), 0, 0];
        a.data = id.to_be_bytes().to_vec();
        Arc::new(Steered::fixed(Arc::new(a)))
    }

    proptest::proptest! {
        /// Any sequence of inserts (positive or negative), lookups and removals over more
        /// keys than the cache holds: it never holds more than its capacity, negatives
        /// never more than their share, and a lookup returns the answer last inserted for
        /// that very key or nothing, never another key's or a removed one.
        #[test]
        fn the_cache_stays_bounded_and_never_answers_for_another_key(
            ops in proptest::collection::vec((0u8..4, 0usize..48, proptest::bool::ANY), 1..600),
        ) {
            const CAPACITY: usize = 16;
            let cache = AnswerCache::new(CAPACITY, None);
            let mut last: std::collections::HashMap<usize, Option<u32>> = Default::default();
            for (n, (op, k, positive)) in ops.into_iter().enumerate() {
                match op {
                    0 | 1 => {
                        cache.insert(key(k), numbered(n as u32, positive), 60, vec![], cache.epoch());
                        last.insert(k, Some(n as u32));
                    }
                    2 => {
                        if let Some(found) = cache.lookup(&key(k)) {
                            let id = u32::from_be_bytes(found.first().data[..4].try_into().unwrap());
                            proptest::prop_assert_eq!(last.get(&k).copied().flatten(), Some(id), "key {}", k);
                        }
                    }
                    _ => {
                        cache.remove(&[key(k)]);
                        last.insert(k, None);
                    }
                }
                let (positive, negative, _) = cache.occupancy();
                proptest::prop_assert!(cache.len() <= CAPACITY && positive + negative == cache.len());
                proptest::prop_assert!(negative <= CAPACITY / NEGATIVE_SHARE, "{} negatives", negative);
            }
        }
    }

    #[test]
    fn clock_gives_recently_used_entries_a_second_chance() {
        let cache = AnswerCache::new(4, None);
        for i in 0..4 {
            cache.insert(key(i), answer(true), 60, vec![], cache.epoch());
        }
        cache.lookup(&key(0));
        cache.insert(key(4), answer(true), 60, vec![], cache.epoch());
        assert!(cache.lookup(&key(0)).is_some(), "used since: kept");
        assert!(cache.lookup(&key(1)).is_none(), "the oldest unused one went");
        assert_eq!(cache.len(), 4);
    }
}
