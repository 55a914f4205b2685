//! Walking a message's sections as they are on the wire: a question, a resource record
//! (owner skipped, rdata as bytes). Shared by the query, UPDATE and TSIG parsers.

use dns_common::limits::MAX_NAME_LEN;

use super::name::uncompressed_name_len;

/// Parses an uncompressed question name at `at`; returns (name length, QTYPE, QCLASS).
pub(super) fn parse_question(msg: &[u8], at: usize) -> Option<(usize, u16, u16)> {
    let name_len = uncompressed_name_len(msg, at)?;
    let fixed = msg.get(at + name_len..at + name_len + 4)?;
    Some((name_len, u16::from_be_bytes([fixed[0], fixed[1]]), u16::from_be_bytes([fixed[2], fixed[3]])))
}

pub(super) struct RawRecord<'a> {
    pub owner_is_root: bool,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub rdata: &'a [u8],
    pub end: usize,
}

/// Parses a resource record at `at` (its owner may be compressed).
pub(super) fn parse_record(msg: &[u8], at: usize) -> Option<RawRecord<'_>> {
    let owner_end = skip_name(msg, at)?;
    let fixed = msg.get(owner_end..owner_end + 10)?;
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let rdata_start = owner_end + 10;
    let rdata = msg.get(rdata_start..rdata_start + rdlen)?;
    Some(RawRecord {
        owner_is_root: msg.get(at) == Some(&0),
        rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
        class: u16::from_be_bytes([fixed[2], fixed[3]]),
        ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        rdata,
        end: rdata_start + rdlen,
    })
}

/// Skips a possibly compressed name; returns the offset after it.
pub(super) fn skip_name(msg: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => return Some(pos + 1),
            1..=63 => pos += 1 + len as usize,
            0xc0..=0xff => {
                // A pointer ends the name; it must point backwards.
                let target = (((len & 0x3f) as usize) << 8) | *msg.get(pos + 1)? as usize;
                if target >= at {
                    return None;
                }
                return Some(pos + 2);
            }
            _ => return None,
        }
        if pos - at > MAX_NAME_LEN {
            return None;
        }
    }
}
