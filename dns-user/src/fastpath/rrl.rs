//! Response rate limiting for userspace's answers (see `dns_common::rrl`), in the same
//! kernel buckets the XDP program accounts in, so a client is limited once whichever
//! path answers it. Without the fast path (no interface to attach to) the buckets are
//! kept in memory, with the same rules and a bounded table.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use aya::{
    Ebpf,
    maps::{Array, HashMap as BpfHashMap, LpmTrie, MapData, lpm_trie::Key as LpmKey},
};
use dns_common::rrl::{
    DEFAULT_RRL_BUCKETS, RRL_BUCKETS_MAP_NAME, RRL_CONFIG_MAP_NAME, RRL_EXEMPT_PREFIXES,
    RRL_EXEMPT_V4_MAP_NAME, RRL_EXEMPT_V6_MAP_NAME, RrlBucket, RrlConfig, RrlKey, Verdict, account,
    new_bucket,
};

use super::{MapsError, monotonic_coarse_ns};
use crate::model::Prefix;

pub use dns_common::rrl::token_kind;

/// The limits, as configured (`[rrl]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrlSettings {
    /// Responses per second per client network and token; 0 turns limiting off.
    pub rate: u32,
    /// Every `slip`-th response over the rate is sent truncated (0: none, 1: all).
    pub slip: u32,
    /// Seconds of debt a flooding network can run up.
    pub window: u32,
    /// Networks never limited.
    pub exempt: Vec<Prefix>,
    /// Buckets kept (least recently used evicted).
    pub buckets: u32,
}

/// Responses per second per client network and token by default: far above what a
/// resolver network asks of one name (it caches the answer for its TTL), low enough that
/// a spoofed victim gets little.
pub const DEFAULT_RRL_RATE: u32 = 100;
pub const DEFAULT_RRL_SLIP: u32 = 2;
pub const DEFAULT_RRL_WINDOW: u32 = 15;

impl Default for RrlSettings {
    fn default() -> Self {
        Self {
            rate: DEFAULT_RRL_RATE,
            slip: DEFAULT_RRL_SLIP,
            window: DEFAULT_RRL_WINDOW,
            exempt: Vec::new(),
            buckets: DEFAULT_RRL_BUCKETS,
        }
    }
}

impl RrlSettings {
    pub fn off() -> Self {
        Self { rate: 0, ..Self::default() }
    }

    fn config(&self) -> RrlConfig {
        RrlConfig { rate: self.rate, slip: self.slip, window: self.window, _pad: 0 }
    }
}

/// What the limiter decided, counted.
#[derive(Default)]
pub struct RrlStats {
    pub slipped: AtomicU64,
    pub dropped: AtomicU64,
}

enum Buckets {
    Kernel(Mutex<BpfHashMap<MapData, RrlKey, RrlBucket>>),
    Memory(Mutex<HashMap<RrlKey, RrlBucket>>),
}

pub struct RateLimiter {
    settings: RrlSettings,
    config: RrlConfig,
    buckets: Buckets,
    pub stats: RrlStats,
}

impl RateLimiter {
    /// Buckets in memory: for a daemon without the fast path, and for tests.
    pub fn in_memory(settings: RrlSettings) -> Self {
        Self {
            config: settings.config(),
            buckets: Buckets::Memory(Mutex::new(HashMap::new())),
            settings,
            stats: RrlStats::default(),
        }
    }

    /// The fast path's buckets: takes the rate-limit maps of the loaded program and
    /// writes the limits and the exempt networks the program reads.
    pub fn kernel(ebpf: &mut Ebpf, settings: RrlSettings) -> Result<Self, MapsError> {
        let take =
            |ebpf: &mut Ebpf, name: &'static str| ebpf.take_map(name).ok_or(MapsError::MissingMap(name));
        let buckets: BpfHashMap<MapData, RrlKey, RrlBucket> =
            BpfHashMap::try_from(take(ebpf, RRL_BUCKETS_MAP_NAME)?)?;
        let mut config: Array<MapData, RrlConfig> = Array::try_from(take(ebpf, RRL_CONFIG_MAP_NAME)?)?;
        let mut v4: LpmTrie<MapData, [u8; 4], u32> = LpmTrie::try_from(take(ebpf, RRL_EXEMPT_V4_MAP_NAME)?)?;
        let mut v6: LpmTrie<MapData, [u8; 16], u32> = LpmTrie::try_from(take(ebpf, RRL_EXEMPT_V6_MAP_NAME)?)?;
        for prefix in &settings.exempt {
            let len = prefix.len as u32;
            match prefix.addr {
                IpAddr::V4(a) => v4.insert(&LpmKey::new(len, a.octets()), 1, 0)?,
                IpAddr::V6(a) => v6.insert(&LpmKey::new(len, a.octets()), 1, 0)?,
            }
        }
        // The limits last: exempt networks are in place before limiting starts.
        config.set(0, settings.config(), 0)?;
        Ok(Self {
            config: settings.config(),
            buckets: Buckets::Kernel(Mutex::new(buckets)),
            settings,
            stats: RrlStats::default(),
        })
    }

    pub fn settings(&self) -> &RrlSettings {
        &self.settings
    }

    /// Accounts one response to `client` for (`kind`, `token`), see `dns_common::rrl`.
    pub fn verdict(&self, client: IpAddr, kind: u8, token: u32) -> Verdict {
        if !self.is_on() {
            return Verdict::Send;
        }
        let key = match client.to_canonical() {
            IpAddr::V4(a) => RrlKey::v4(a.octets(), kind, token),
            IpAddr::V6(a) => RrlKey::v6(a.octets(), kind, token),
        };
        let now_s = (monotonic_coarse_ns() / 1_000_000_000) as u32;
        let verdict = match &self.buckets {
            Buckets::Kernel(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                let mut bucket = map.get(&key, 0).unwrap_or_else(|_| new_bucket(now_s, &self.config));
                let verdict = account(&mut bucket, now_s, &self.config);
                // A failed write (it cannot fail for an LRU map) only forgets the response.
                let _ = map.insert(key, bucket, 0);
                verdict
            }
            Buckets::Memory(map) => {
                let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
                if map.len() >= self.settings.buckets as usize && !map.contains_key(&key) {
                    evict(&mut map, now_s, self.settings.window);
                }
                let bucket = map.entry(key).or_insert_with(|| new_bucket(now_s, &self.config));
                account(bucket, now_s, &self.config)
            }
        };
        if verdict != Verdict::Send && self.settings.exempt.iter().any(|p| p.contains(client.to_canonical()))
        {
            return Verdict::Send;
        }
        match verdict {
            Verdict::Slip => self.stats.slipped.fetch_add(1, Ordering::Relaxed),
            Verdict::Drop => self.stats.dropped.fetch_add(1, Ordering::Relaxed),
            Verdict::Send => 0,
        };
        verdict
    }

    /// Whether responses are limited at all (rate 0: off).
    pub fn is_on(&self) -> bool {
        self.config.rate != 0
    }

    /// Buckets the in-memory table holds (the kernel's map bounds itself).
    #[cfg(test)]
    fn buckets_held(&self) -> usize {
        match &self.buckets {
            Buckets::Kernel(_) => unreachable!("tests use the in-memory table"),
            Buckets::Memory(map) => map.lock().unwrap_or_else(|p| p.into_inner()).len(),
        }
    }
}

/// Makes room in a full in-memory table: buckets idle for longer than the window are
/// full again (forgetting them changes nothing); if none is, the stalest goes.
fn evict(map: &mut HashMap<RrlKey, RrlBucket>, now_s: u32, window: u32) {
    let before = map.len();
    map.retain(|_, b| now_s.saturating_sub(b.second) <= window);
    if map.len() == before
        && let Some(stalest) = map.iter().min_by_key(|(_, b)| b.second).map(|(k, _)| *k)
    {
        map.remove(&stalest);
    }
}

/// Exempt prefixes the kernel's tries hold, per family.
pub const MAX_EXEMPT_PREFIXES: usize = RRL_EXEMPT_PREFIXES as usize;

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, buckets: u32) -> RateLimiter {
        RateLimiter::in_memory(RrlSettings {
            rate,
            slip: 2,
            window: 1,
            exempt: vec!["198.18.9.0/24".parse().unwrap()],
            buckets,
        })
    }

    #[test]
    fn one_network_is_limited_per_token_and_exempt_networks_never() {
        let l = limiter(3, 1024);
        let a: IpAddr = "198.18.1.1".parse().unwrap();
        let b: IpAddr = "198.18.1.77".parse().unwrap();
        let sent =
            |c, token| (0..10).filter(|_| l.verdict(c, token_kind::NAME, token) == Verdict::Send).count();
        assert_eq!(sent(a, 1), 3);
        assert_eq!(sent(b, 1), 0, "same /24, same token: one bucket");
        assert_eq!(sent(b, 2), 3, "another token: another bucket");
        assert_eq!(sent("198.18.2.1".parse().unwrap(), 1), 3, "another /24");
        assert_eq!(sent("198.18.9.5".parse().unwrap(), 1), 10, "exempt");
        assert!(l.stats.slipped.load(Ordering::Relaxed) > 0 && l.stats.dropped.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn the_memory_table_is_bounded() {
        let l = limiter(3, 64);
        for i in 0..1000u32 {
            l.verdict(IpAddr::from([10, (i >> 8) as u8, i as u8, 1]), token_kind::NAME, 1);
        }
        assert!(l.buckets_held() <= 64, "{} buckets", l.buckets_held());
    }
}
