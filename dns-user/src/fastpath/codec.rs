//! The slot codec: an encoded answer as the answer array holds it, and back.

use dns_common::{
    limits::ANSWER_MAX_LEN,
    maps::{
        AnswerSlot, PICK_SCALE, ROTATE_MAX_END,
        answer_flags::{NOT_AUTHORITATIVE, RCODE_MASK, STALE},
    },
    wire::{csum_add_bytes, csum_fold},
};

use crate::protocol::{
    EncodedAnswer, RotateSpan, Steered, VariantChoice,
    answer::{is_whole_records, last_record_offsets},
};

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

/// Why a slot read from the kernel (adopted pins) cannot be an answer we wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptSlot {
    Length,
    Checksum,
    Records,
    Optional,
    Rotation,
    Flags,
}

/// The answer an answer slot holds, if the slot is one [`answer_slot`] could have
/// written: pinned maps outlive the daemon, and a foreign or damaged slot must never be
/// served or panic the code that serves it.
pub fn answer_of_slot(slot: &AnswerSlot) -> Result<EncodedAnswer, CorruptSlot> {
    let len = slot.len as usize;
    if len > ANSWER_MAX_LEN {
        return Err(CorruptSlot::Length);
    }
    let data = &slot.data[..len];
    if slot.csum != csum_fold(csum_add_bytes(0, data)) {
        return Err(CorruptSlot::Checksum);
    }
    let counts = [slot.ancount, slot.nscount, slot.arcount];
    let records = counts.iter().map(|c| *c as usize).sum();
    if !is_whole_records(data, records) {
        return Err(CorruptSlot::Records);
    }
    if slot.optional_records as usize > slot.arcount as usize {
        return Err(CorruptSlot::Optional);
    }
    let rotated = slot.rotate_count >= 2;
    // The encoder makes spans of two records or more; a shorter one is never written.
    if !rotated && (slot.rotate_count, slot.rotate_offset, slot.rotate_size) != (0, 0, 0) {
        return Err(CorruptSlot::Rotation);
    }
    if rotated {
        let end = slot.rotate_offset as usize + slot.rotate_count as usize * slot.rotate_size as usize;
        if slot.rotate_size == 0 || !slot.rotate_size.is_multiple_of(2) || end > len || end > ROTATE_MAX_END {
            return Err(CorruptSlot::Rotation);
        }
    }
    if slot.flags & !(RCODE_MASK | STALE | NOT_AUTHORITATIVE) != 0 {
        return Err(CorruptSlot::Flags);
    }
    Ok(decode_slot(slot))
}

impl CorruptSlot {
    pub fn message(self) -> &'static str {
        match self {
            Self::Length => "length beyond the slot",
            Self::Checksum => "checksum does not match the data",
            Self::Records => "data is not the records its counts say",
            Self::Optional => "more optional records than records",
            Self::Rotation => "rotated run outside the data",
            Self::Flags => "unknown flags",
        }
    }
}

fn decode_slot(slot: &AnswerSlot) -> EncodedAnswer {
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

    /// One A record (owner a pointer to the question) and its bytes.
    fn a_record() -> EncodedAnswer {
        let mut data = vec![0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];
        data.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 2]);
        EncodedAnswer {
            rcode: 0,
            authoritative: true,
            counts: [2, 0, 0],
            data,
            rotate: Some(RotateSpan { offset: 0, count: 2, size: 16 }),
            stale: false,
            optional: Vec::new(),
        }
    }

    #[test]
    fn slots_we_write_read_back_and_damaged_ones_are_refused() {
        let answer = a_record();
        assert_eq!(answer_of_slot(&answer_slot(&answer)), Ok(answer.clone()));
        type Damage = fn(&mut AnswerSlot);
        let damaged: [(&str, Damage, CorruptSlot); 8] = [
            ("length past the slot", |s| s.len = 2000, CorruptSlot::Length),
            ("a byte changed", |s| s.data[13] ^= 1, CorruptSlot::Checksum),
            ("one record more than the data", |s| s.ancount = 3, CorruptSlot::Records),
            ("a record fewer", |s| s.ancount = 1, CorruptSlot::Records),
            ("optional records that are not there", |s| s.optional_records = 1, CorruptSlot::Optional),
            ("rotation past the data", |s| s.rotate_count = 40, CorruptSlot::Rotation),
            // Found by the slot fuzz target: a span the encoder never writes.
            ("a one-record span", |s| s.rotate_count = 1, CorruptSlot::Rotation),
            ("flags we never set", |s| s.flags |= 0x4000, CorruptSlot::Flags),
        ];
        for (what, damage, expected) in damaged {
            let mut slot = answer_slot(&answer);
            damage(&mut slot);
            if expected != CorruptSlot::Checksum && expected != CorruptSlot::Length {
                // Damage a checksum would not reveal (a foreign writer keeps it right).
                slot.csum =
                    csum_fold(csum_add_bytes(0, &slot.data[..(slot.len as usize).min(ANSWER_MAX_LEN)]));
            }
            assert_eq!(answer_of_slot(&slot), Err(expected), "{what}");
        }
    }
}
