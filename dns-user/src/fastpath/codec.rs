//! The slot codec: an encoded answer as the answer array holds it, and back.

use dns_common::{
    limits::ANSWER_MAX_LEN,
    maps::{
        AnswerSlot, PICK_SCALE,
        answer_flags::{NOT_AUTHORITATIVE, RCODE_MASK, STALE},
    },
    wire::{csum_add_bytes, csum_fold},
};

use crate::protocol::{EncodedAnswer, RotateSpan, Steered, VariantChoice, answer::last_record_offsets};

/// The map values of an answer's variants, in order.
pub fn answer_slots(answer: &Steered) -> Vec<AnswerSlot> {
    answer
        .variants
        .iter()
        .enumerate()
        .map(|(i, variant)| {
            let mut slot = answer_slot(variant);
            if let VariantChoice::Weighted(bounds) = &answer.choice {
                slot.pick_below = bounds.get(i).copied().unwrap_or(PICK_SCALE);
            }
            slot
        })
        .collect()
}

/// The map value for an answer: its bytes, counts, RCODE and checksum contribution.
pub fn answer_slot(answer: &EncodedAnswer) -> AnswerSlot {
    let mut slot = AnswerSlot::zeroed();
    let len = answer.data.len().min(ANSWER_MAX_LEN);
    slot.data[..len].copy_from_slice(&answer.data[..len]);
    slot.len = len as u16;
    slot.flags = (answer.rcode & RCODE_MASK)
        | if answer.stale { STALE } else { 0 }
        | if answer.authoritative { 0 } else { NOT_AUTHORITATIVE };
    slot.ancount = answer.counts[0];
    slot.nscount = answer.counts[1];
    slot.arcount = answer.counts[2];
    slot.csum = csum_fold(csum_add_bytes(0, &answer.data[..len]));
    slot.optional_records = answer.optional.len() as u16;
    if let Some(r) = answer.rotate {
        slot.rotate_offset = r.offset;
        slot.rotate_count = r.count;
        slot.rotate_size = r.size;
    }
    slot
}

/// The answer an answer slot holds.
pub fn answer_of_slot(slot: &AnswerSlot) -> EncodedAnswer {
    let len = (slot.len as usize).min(ANSWER_MAX_LEN);
    let counts = [slot.ancount, slot.nscount, slot.arcount];
    EncodedAnswer {
        rcode: slot.flags & RCODE_MASK,
        authoritative: slot.flags & NOT_AUTHORITATIVE == 0,
        counts,
        data: slot.data[..len].to_vec(),
        rotate: (slot.rotate_count >= 2).then_some(RotateSpan {
            offset: slot.rotate_offset,
            count: slot.rotate_count,
            size: slot.rotate_size,
        }),
        stale: slot.flags & STALE != 0,
        optional: last_record_offsets(
            &slot.data[..len],
            counts.iter().map(|c| *c as usize).sum(),
            slot.optional_records as usize,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_checksum_is_the_sum_of_the_data() {
        let a = EncodedAnswer {
            rcode: 3,
            authoritative: true,
            counts: [0, 1, 0],
            data: vec![0x12, 0x34, 0x56],
            rotate: None,
            stale: false,
            optional: Vec::new(),
        };
        let s = answer_slot(&a);
        assert_eq!((s.len, s.flags, s.nscount), (3, 3, 1));
        assert_eq!(s.csum, csum_fold(csum_add_bytes(0, &[0x12, 0x34, 0x56])));
    }
}
