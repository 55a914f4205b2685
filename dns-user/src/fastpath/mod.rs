//! The fast path's owner: the only writer of the BPF maps.
//!
//! [`AnswerCache`] holds every cacheable answer userspace produced, keyed exactly as
//! the XDP program keys its maps (lower-cased wire QNAME + QTYPE), and mirrors the ones
//! the kernel can serve into the name maps and the answer array. It serves userspace
//! hits too (TCP, oversized UDP, XDP detached), with the same expiry as the kernel.

pub mod loader;
mod maps;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, RwLock},
    time::Duration,
};

use dns_common::{
    limits::{ANSWER_MAX_LEN, bucket_for},
    stats::Outcome,
};

pub use maps::{KernelMaps, MapsError};

use crate::{answer::EncodedAnswer, resolver::Tag, wire::WireName};

/// The key both sides use: lower-cased wire QNAME and QTYPE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub name: WireName,
    pub qtype: u16,
}

#[derive(Clone, Debug)]
struct Cached {
    answer: Arc<EncodedAnswer>,
    expires_ns: u64,
    tags: Arc<[Tag]>,
}

/// Default bound of the userspace cache.
pub const DEFAULT_CACHE_ENTRIES: usize = 1 << 20;

pub struct AnswerCache {
    entries: RwLock<HashMap<CacheKey, Cached>>,
    max_entries: usize,
    kernel: Option<Mutex<KernelMaps>>,
}

/// Monotonic clock in nanoseconds: the clock `bpf_ktime_get_ns` reads.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether the XDP program can serve `answer` for `key` exactly as userspace would.
pub fn kernel_can_serve(key: &CacheKey, answer: &EncodedAnswer) -> bool {
    answer.authoritative
        && answer.rcode <= 15
        && answer.data.len() <= ANSWER_MAX_LEN
        && bucket_for(key.name.as_bytes().len()).is_some()
}

impl AnswerCache {
    pub fn new(max_entries: usize, kernel: Option<KernelMaps>) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            max_entries,
            kernel: kernel.map(Mutex::new),
        }
    }

    pub fn has_kernel(&self) -> bool {
        self.kernel.is_some()
    }

    /// A fresh cached answer for `key`.
    pub fn lookup(&self, key: &CacheKey) -> Option<Arc<EncodedAnswer>> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let cached = entries.get(key)?;
        (monotonic_ns() < cached.expires_ns).then(|| cached.answer.clone())
    }

    /// Caches an answer for `ttl` and, when the kernel can serve it, installs it in
    /// the maps so the next identical query is answered by XDP.
    pub fn insert(&self, key: CacheKey, answer: Arc<EncodedAnswer>, ttl: u32, tags: Vec<Tag>) {
        if ttl == 0 {
            return;
        }
        let expires_ns = monotonic_ns() + Duration::from_secs(ttl.into()).as_nanos() as u64;
        {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            if entries.len() >= self.max_entries && !entries.contains_key(&key) {
                let now = monotonic_ns();
                entries.retain(|_, c| c.expires_ns > now);
                if entries.len() >= self.max_entries {
                    tracing::debug!("userspace answer cache full; not caching");
                    return;
                }
            }
            entries.insert(
                key,
                Cached {
                    answer: answer.clone(),
                    expires_ns,
                    tags: tags.into(),
                },
            );
        }
        self.install(&key, &answer, expires_ns);
    }

    /// Makes sure the kernel holds the cached answer for `key` (it may have been
    /// evicted by the kernel's LRU): called when a query the kernel could have
    /// answered reached userspace.
    pub fn ensure_in_kernel(&self, key: &CacheKey) {
        let Some(kernel) = &self.kernel else { return };
        let cached = {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            match entries.get(key) {
                Some(c) => c.clone(),
                None => return,
            }
        };
        if !kernel_can_serve(key, &cached.answer) {
            return;
        }
        let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
        if !kernel.contains(key)
            && let Err(e) = kernel.install(key, &cached.answer, cached.expires_ns)
        {
            tracing::warn!(error = %e, "reinstalling an answer in the fast path failed");
        }
    }

    fn install(&self, key: &CacheKey, answer: &EncodedAnswer, expires_ns: u64) {
        let Some(kernel) = &self.kernel else { return };
        if !kernel_can_serve(key, answer) {
            return;
        }
        let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = kernel.install(key, answer, expires_ns) {
            tracing::warn!(error = %e, name = ?key.name, "installing an answer in the fast path failed");
        }
    }

    /// Removes every answer carrying one of `tags`, from the cache and the kernel.
    pub fn invalidate(&self, tags: &[Tag]) -> usize {
        let removed: Vec<CacheKey> = {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<CacheKey> = entries
                .iter()
                .filter(|(_, c)| c.tags.iter().any(|t| tags.contains(t)))
                .map(|(k, _)| *k)
                .collect();
            for k in &keys {
                entries.remove(k);
            }
            keys
        };
        if let Some(kernel) = &self.kernel {
            let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
            for key in &removed {
                kernel.remove(key);
            }
        }
        removed.len()
    }

    /// Drops expired entries (and their kernel entries and answer slots).
    pub fn sweep(&self) {
        let now = monotonic_ns();
        let expired: Vec<CacheKey> = {
            let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<CacheKey> = entries
                .iter()
                .filter(|(_, c)| c.expires_ns <= now)
                .map(|(k, _)| *k)
                .collect();
            for k in &keys {
                entries.remove(k);
            }
            keys
        };
        if let Some(kernel) = &self.kernel {
            let mut kernel = kernel.lock().unwrap_or_else(|p| p.into_inner());
            for key in &expired {
                kernel.remove(key);
            }
            kernel.reclaim_quarantine();
        }
    }

    /// The XDP outcome counters summed over CPUs, if the program is loaded.
    pub fn xdp_counters(&self) -> Option<Vec<(Outcome, u64)>> {
        let kernel = self
            .kernel
            .as_ref()?
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Some(
            Outcome::ALL
                .iter()
                .map(|o| (*o, kernel.counter(*o)))
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
