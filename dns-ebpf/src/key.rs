//! The lookup key: the question's name lower-cased into the scratch buffer, zero-padded
//! to its length bucket, then QTYPE; and the name map of that bucket.

use core::{ffi::c_void, ptr::read_unaligned};

use aya_ebpf::{helpers::generated::bpf_xdp_load_bytes, programs::XdpContext};
use dns_common::{
    limits::{DNS_HEADER_LEN, NAME_BUCKETS},
    maps::{
        KEY_CHECK_SEED, NameEntry, NameKey0, NameKey1, NameKey2, NameKey3, SCRATCH_WORDS, Scratch,
        key_check_finish, key_check_step,
    },
    stats::Outcome,
    wire::{low_bytes_mask, lower_word},
};

use crate::{NAMES_0, NAMES_1, NAMES_2, NAMES_3, parse::Frame};

/// 8-byte words of the question the key loop reads per bucket: the bucket's name
/// capacity plus QTYPE and QCLASS, rounded up.
const BUCKET_WORDS: [usize; 4] = [
    (NAME_BUCKETS[0] + 4).div_ceil(8),
    (NAME_BUCKETS[1] + 4).div_ceil(8),
    (NAME_BUCKETS[2] + 4).div_ceil(8),
    (NAME_BUCKETS[3] + 4).div_ceil(8),
];
const MAX_WORDS: usize = BUCKET_WORDS[3];
const _: () = assert!(MAX_WORDS == SCRATCH_WORDS, "scratch arrays sized for the longest bucket");

/// The key of the question, built in scratch.
pub struct BuiltKey {
    pub bucket: usize,
    /// One's complement sum of the question exactly as received (letter case included).
    pub question_sum: u64,
    /// `dns_common::maps::key_check` of the key: a name entry is answered only if its
    /// check is this one.
    pub check: u32,
}

/// Builds the lookup key in scratch (the lower-cased name zero-padded to the bucket
/// size, then QTYPE), its check and the question's checksum contribution.
pub fn build_key(
    ctx: &XdpContext,
    scratch: *mut Scratch,
    f: &Frame,
    name_len: usize,
) -> Result<BuiltKey, Outcome> {
    // SAFETY: scratch is this CPU's value, 8-byte aligned with its arrays at multiples
    // of 8. name_len <= 255, so the question (name_len + 4 bytes) fits raw, and the loop
    // touches at most MAX_WORDS words of raw and key, their exact sizes.
    unsafe {
        let raw = (*scratch).raw.as_mut_ptr();
        let key = (*scratch).key.as_mut_ptr();
        let question_len = name_len + 4;
        if bpf_xdp_load_bytes(
            ctx.ctx,
            (f.dns + DNS_HEADER_LEN) as u32,
            raw as *mut c_void,
            question_len as u32,
        ) != 0
        {
            return Err(Outcome::Error);
        }
        let qtype = read_unaligned(raw.add(name_len) as *const [u8; 2]);

        let bucket = if name_len <= NAME_BUCKETS[0] {
            0
        } else if name_len <= NAME_BUCKETS[1] {
            1
        } else if name_len <= NAME_BUCKETS[2] {
            2
        } else {
            3
        };
        let words = BUCKET_WORDS[bucket];
        let raw_words = raw as *const u64;
        let key_words = key as *mut u64;
        let mut sum: u64 = 0;
        let mut h = KEY_CHECK_SEED;
        // Words wholly inside the name: copied lower-cased, no masks.
        let full = name_len / 8;
        let mut i = 0;
        for _ in 0..MAX_WORDS {
            if i >= full {
                break;
            }
            let w = *raw_words.add(i);
            sum += word_sum(w);
            let lower = lower_word(w);
            *key_words.add(i) = lower;
            h = key_check_step(h, lower);
            i += 1;
        }
        if i >= MAX_WORDS - 1 {
            return Err(Outcome::Error);
        }
        // The word where the name ends: its last name bytes, then QTYPE and QCLASS
        // (which run into the next word when 4 or more name bytes are here).
        let rem = (name_len % 8) as u64;
        let w = *raw_words.add(i);
        let lower = lower_word(w & low_bytes_mask(rem));
        *key_words.add(i) = lower;
        h = key_check_step(h, lower);
        let (question_here, question_next) = if rem >= 4 { (8, rem - 4) } else { (rem + 4, 0) };
        sum += word_sum(w & low_bytes_mask(question_here));
        sum += word_sum(*raw_words.add(i + 1) & low_bytes_mask(question_next));
        // Zero padding up to the bucket's size.
        for _ in 0..MAX_WORDS {
            i += 1;
            if i >= words {
                break;
            }
            *key_words.add(i) = 0;
        }
        // QTYPE right after the bucket's name capacity (an even offset).
        let qtype_at = match bucket {
            0 => NAME_BUCKETS[0],
            1 => NAME_BUCKETS[1],
            2 => NAME_BUCKETS[2],
            _ => NAME_BUCKETS[3],
        };
        *(key.add(qtype_at) as *mut [u8; 2]) = qtype;
        Ok(BuiltKey { bucket, question_sum: sum, check: key_check_finish(h, name_len, qtype) })
    }
}

#[inline(always)]
pub fn lookup(scratch: *mut Scratch, bucket: usize) -> Option<*const NameEntry> {
    // SAFETY: the key types are byte arrays (alignment 1) no longer than scratch.key.
    unsafe {
        let key = (*scratch).key.as_ptr();
        match bucket {
            0 => NAMES_0.get_ptr(&*(key as *const NameKey0)),
            1 => NAMES_1.get_ptr(&*(key as *const NameKey1)),
            2 => NAMES_2.get_ptr(&*(key as *const NameKey2)),
            _ => NAMES_3.get_ptr(&*(key as *const NameKey3)),
        }
    }
}

/// One's complement contribution of an 8-byte word (native order), unfolded.
#[inline(always)]
fn word_sum(w: u64) -> u64 {
    (w & 0xffff_ffff) + (w >> 32)
}
