//! NXDOMAIN for names that do not exist (see `dns_common::negative`): after a miss,
//! the name and each of its ancestors are hashed in one backward pass over the key, the
//! name must be unknown, its closest known ancestor (the closest encloser) must have no
//! wildcard child, no known ancestor may be a delegation, and the zone must be
//! enumerable; then the zone's NXDOMAIN slot answers.

use core::ptr::{read_unaligned, read_volatile, write_volatile};

use aya_ebpf::helpers::generated::bpf_ktime_get_coarse_ns;
use dns_common::{
    limits::{MAX_LABELS, MAX_NAME_LEN},
    maps::{SUFFIX_HASHES, Scratch},
    negative::{hash_step, known_flags, nxdomain_applies, zone_flags},
    stats::Outcome,
};

use crate::{KNOWN_NAMES, NEGATIVE_CONFIG, ZONE_FACTS, launder};

/// The scratch spill slot of the byte positions (see `launder`).
const SPILL_BYTE: usize = 4;
/// The scratch spill slot of the closest encloser's position (0: none found).
const SPILL_ENCLOSER: usize = 6;

/// Mask bounding byte positions of the name into the scratch arrays.
const POSITION_MASK: usize = SUFFIX_HASHES - 1;
const _: () = assert!(SUFFIX_HASHES.is_power_of_two() && SUFFIX_HASHES > MAX_NAME_LEN);

/// What answers a name that does not exist.
pub enum Absent {
    /// The zone's NXDOMAIN, in this answer slot; the zone's id.
    Nxdomain(u32, u32),
    /// The wildcard's answer below this closest encloser (by hash), for this QTYPE.
    Wildcard(u64, [u8; 2]),
}

/// What answers the name (lower-cased in `scratch.key`, `name_len` bytes) if it is
/// proven not to exist; `Miss` otherwise.
#[inline(always)]
pub fn absent_name(scratch: *mut Scratch, name_len: usize) -> Result<Absent, Outcome> {
    let config = NEGATIVE_CONFIG.get_ptr(0).ok_or(Outcome::Miss)?;
    // SAFETY: a valid map value pointer; plain integers.
    let (valid_until, seed) = unsafe { ((*config).valid_until_ns, (*config).seed) };
    // SAFETY: helper without arguments.
    if valid_until == 0 || unsafe { bpf_ktime_get_coarse_ns() } >= valid_until {
        return Err(Outcome::Miss);
    }
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return Err(Outcome::Miss);
    }
    // SAFETY: scratch is this CPU's value; every index is masked below SUFFIX_HASHES,
    // within both key (SCRATCH_KEY_LEN > 256) and suffix_hashes.
    unsafe {
        let qtype_bytes =
            read_unaligned((*scratch).raw.as_ptr().add(name_len & POSITION_MASK) as *const [u8; 2]);
        if !nxdomain_applies(u16::from_be_bytes(qtype_bytes)) {
            return Err(Outcome::Miss);
        }
        let key = (*scratch).key.as_ptr();
        let hashes = (*scratch).suffix_hashes.as_mut_ptr();
        // Backwards from the root label: the hash of the suffix starting at each byte.
        let mut hash = seed;
        let mut left = name_len;
        for _ in 0..MAX_NAME_LEN {
            if left == 0 {
                break;
            }
            left -= 1;
            // Laundered so LLVM keeps the mask (it would turn the index into a pointer
            // walk the verifier cannot bound).
            let p = launder(scratch, SPILL_BYTE, left) & POSITION_MASK;
            hash = hash_step(hash, read_volatile(key.add(p)));
            *hashes.add(p) = hash;
        }
        if KNOWN_NAMES.get(&*hashes).is_some() {
            // It exists: userspace answers (NODATA, or data not in the maps yet).
            return Err(Outcome::Miss);
        }
        // Ancestors, nearest first: the first known one is the closest encloser. Its
        // position is kept in scratch memory, not in a register, so every iteration
        // ends in the same verifier state whether it was found yet or not.
        let encloser_at = (*scratch).spill.as_mut_ptr().add(SPILL_ENCLOSER);
        write_volatile(encloser_at, 0);
        let mut pos = 0usize;
        for _ in 0..MAX_LABELS {
            let len = read_volatile(key.add(launder(scratch, SPILL_BYTE, pos) & POSITION_MASK)) as usize;
            if len == 0 {
                break;
            }
            pos += len + 1;
            if pos >= name_len {
                break;
            }
            let at = launder(scratch, SPILL_BYTE, pos) & POSITION_MASK;
            let Some(known) = KNOWN_NAMES.get(&*hashes.add(at)) else { continue };
            let known = read_unaligned(known);
            if known.wire_len as usize != name_len - pos {
                // Another name with the same hash: not an ancestor.
                continue;
            }
            if known.flags & known_flags::CUT != 0 {
                return Err(Outcome::Miss);
            }
            if read_volatile(encloser_at) == 0 {
                write_volatile(encloser_at, at as u32);
            }
        }
        let at = read_volatile(encloser_at) as usize & POSITION_MASK;
        if at == 0 {
            return Err(Outcome::Miss);
        }
        let encloser = *hashes.add(at);
        let known = read_unaligned(KNOWN_NAMES.get(&encloser).ok_or(Outcome::Miss)?);
        let facts = ZONE_FACTS.get(&known.zone).ok_or(Outcome::Miss)?;
        if facts.flags & zone_flags::ENUMERABLE == 0 {
            return Err(Outcome::Miss);
        }
        let wildcard = (known.flags & known_flags::WILDCARD != 0).then_some(encloser);
        Ok(match wildcard {
            Some(encloser) => Absent::Wildcard(encloser, qtype_bytes),
            None => Absent::Nxdomain(facts.nxdomain_slot, known.zone),
        })
    }
}
