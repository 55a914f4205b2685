//! The slot codec on slots read from pinned maps (which outlive the daemon and may be
//! foreign or damaged): `answer_of_slot` on any slot never panics; a slot it accepts is
//! one `answer_slot` writes back bit for bit, and its rotation applies within the data.
//! The input is the slot's bytes; its first byte, when odd, fixes the checksum so the
//! checks behind it are reached.
#![no_main]

use dns_common::{
    limits::ANSWER_MAX_LEN,
    maps::AnswerSlot,
    wire::{csum_add_bytes, csum_fold},
};
use instadns::fastpath::codec::{answer_of_slot, answer_slot};
use libfuzzer_sys::fuzz_target;

/// The fields of a slot that the codec owns (`pick_below` is the weighted set's).
fn fields(s: &AnswerSlot) -> (u16, u16, [u16; 3], u16, (u16, u8, u8), u16, &[u8]) {
    let data = &s.data[..(s.len as usize).min(ANSWER_MAX_LEN)];
    (
        s.len,
        s.flags,
        [s.ancount, s.nscount, s.arcount],
        s.csum,
        (s.rotate_offset, s.rotate_count, s.rotate_size),
        s.optional_records,
        data,
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&how, bytes)) = data.split_first() else { return };
    let mut slot = AnswerSlot::zeroed();
    // SAFETY: AnswerSlot is repr(C) of integers and bytes: every bit pattern is a value.
    let raw = unsafe {
        std::slice::from_raw_parts_mut((&raw mut slot).cast::<u8>(), std::mem::size_of::<AnswerSlot>())
    };
    let n = bytes.len().min(raw.len());
    raw[..n].copy_from_slice(&bytes[..n]);
    if how & 1 == 1 {
        let len = (slot.len as usize).min(ANSWER_MAX_LEN);
        slot.csum = csum_fold(csum_add_bytes(0, &slot.data[..len]));
    }
    let Ok(answer) = answer_of_slot(&slot) else { return };
    let again = answer_slot(&answer);
    assert!(
        fields(&again) == fields(&slot),
        "a slot the codec accepts does not round-trip:\n  read  {:?}\n  wrote {:?}",
        fields(&slot),
        fields(&again)
    );
    if let Some(span) = answer.rotate {
        for k in 0..span.count as usize {
            let mut out = Vec::new();
            span.apply(&answer.data, k, &mut out);
            assert_eq!(out.len(), answer.data.len(), "rotation {k} changed the length");
        }
    }
});
