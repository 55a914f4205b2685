//! The fast-path owner: the only writer of the BPF maps. It loads the XDP program,
//! pins its maps and links so they outlive the daemon, writes answers into the kernel
//! maps (names, answer slots, territory tries) and reads back their counters.
//!
//! May import: `protocol` (the answers it encodes), `model` (prefixes), `dns_common`.
//! Never the resolver, the engine, the store or anything above them.

pub mod codec;
pub mod cookies;
pub mod iface;
pub mod kernel;
pub mod link_events;
pub mod loader;
pub mod pin;
pub mod rrl;
pub mod slots;
pub mod stats;

use dns_common::{
    limits::{ANSWER_MAX_LEN, bucket_for},
    maps::{MAX_TERRITORIES, MAX_WEIGHTED_VARIANTS},
};

pub use kernel::{KernelMaps, MapsError, pinned_keys};
pub use stats::MapUsage;

use crate::protocol::{CacheKey, Steered, VariantChoice};

/// Monotonic clock in nanoseconds: the clock the XDP program's expiry check reads
/// (its coarse variant lags by at most a tick).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The coarse monotonic clock in nanoseconds: exactly what the XDP program's
/// `bpf_ktime_get_coarse_ns` reads, for values both must compute alike (cookie
/// timestamps, rate-limit seconds).
pub fn monotonic_coarse_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether the XDP program can serve `answer` for `key` exactly as userspace would.
pub fn kernel_can_serve(key: &CacheKey, answer: &Steered) -> bool {
    kernel_can_serve_any(answer) && bucket_for(key.name().len()).is_some()
}

/// Whether the XDP program can serve `answer` (for a name that fits a bucket).
pub fn kernel_can_serve_any(answer: &Steered) -> bool {
    let variants_fit = match answer.choice {
        VariantChoice::Fixed => answer.variants.len() == 1,
        VariantChoice::Weighted(_) => answer.variants.len() <= MAX_WEIGHTED_VARIANTS,
        VariantChoice::Directional => answer.variants.len() <= MAX_TERRITORIES + 1,
    };
    variants_fit && answer.variants.iter().all(|a| a.rcode <= 15 && a.data.len() <= ANSWER_MAX_LEN)
}
