//! Domain names on the wire: the lower-cased inline form queries are keyed by, the
//! presentation form, and conversions to and from hickory's `Name`.

use dns_common::limits::{MAX_LABEL_LEN, MAX_NAME_LEN};
use hickory_proto::rr::Name;
use thiserror::Error;

use super::presentation::escape_into;

/// A lower-cased wire-format name, stored inline (no allocation per query).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireName {
    len: u8,
    bytes: [u8; MAX_NAME_LEN],
}

impl WireName {
    /// Lower-cases `wire` (an uncompressed, validated wire name).
    pub fn lowercase(wire: &[u8]) -> Self {
        debug_assert!(!wire.is_empty() && wire.len() <= MAX_NAME_LEN);
        let mut bytes = [0u8; MAX_NAME_LEN];
        dns_common::wire::lowercase_name_into(wire, &mut bytes);
        Self { len: wire.len() as u8, bytes }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for WireName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", display_wire_name(self.as_bytes()))
    }
}

/// Presentation form of an uncompressed wire name, with the escapes of RFC 4343.
pub fn display_wire_name(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut pos = 0;
    while pos < wire.len() {
        let len = wire[pos] as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        // A label's dots and backslashes are escaped; so is the space (RFC 4343).
        escape_into(&mut out, wire.get(pos..pos + len).unwrap_or_default(), b".\\", b'!');
        out.push('.');
        pos += len;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Length of the uncompressed wire name at `at`, if it is well formed: labels of at
/// most 63 bytes, at most 255 bytes in all, no compression pointers (the question is the
/// first name of a message, so a pointer cannot point anywhere valid).
pub fn uncompressed_name_len(msg: &[u8], at: usize) -> Option<usize> {
    let mut pos = at;
    loop {
        let len = *msg.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        if len > MAX_LABEL_LEN {
            return None;
        }
        pos += len;
        if pos - at >= MAX_NAME_LEN {
            return None;
        }
    }
    Some(pos - at)
}

/// Reads the possibly compressed name at `at`: (its lower-cased uncompressed wire form,
/// the offset after it where it is written). Pointers must point backwards, so a
/// message cannot make us loop; the name is at most 255 bytes.
pub fn read_name(msg: &[u8], at: usize) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let (mut pos, mut end) = (at, None);
    loop {
        let len = *msg.get(pos)?;
        match len {
            0 => {
                out.push(0);
                return Some((out, end.unwrap_or(pos + 1)));
            }
            1..=63 => {
                let label = msg.get(pos + 1..pos + 1 + len as usize)?;
                out.push(len);
                out.extend(label.iter().map(u8::to_ascii_lowercase));
                if out.len() >= MAX_NAME_LEN {
                    return None;
                }
                pos += 1 + len as usize;
            }
            0xc0..=0xff => {
                let target = (((len & 0x3f) as usize) << 8) | *msg.get(pos + 1)? as usize;
                if target >= pos {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return None,
        }
    }
}

#[derive(Debug, Error)]
#[error("{0}")]
pub struct NameError(pub String);

/// The number of labels of `name`, a leading `*` included (hickory's `num_labels`
/// leaves it out).
pub fn label_count(name: &Name) -> usize {
    name.iter().len()
}

/// Length of a name in uncompressed wire format.
pub fn wire_len(name: &Name) -> usize {
    // One length byte per label plus the label bytes plus the root label.
    name.iter().map(|l| l.len() + 1).sum::<usize>() + 1
}

/// Decodes an uncompressed wire-format name.
pub fn name_from_wire(wire: &[u8]) -> Result<Name, NameError> {
    use hickory_proto::serialize::binary::{BinDecodable as _, BinDecoder};
    Name::read(&mut BinDecoder::new(wire)).map_err(|e| NameError(e.to_string()))
}

/// The wire form of a name (uncompressed).
pub fn name_to_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(wire_len(name));
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// Parses an absolute domain name as stored (ending in a dot), lower-cased.
pub fn parse_absolute(text: &str) -> Result<Name, NameError> {
    let name =
        Name::from_ascii(text).map_err(|e| NameError(format!("{text:?} is not a domain name: {e}")))?;
    if !name.is_fqdn() {
        return Err(NameError(format!("{text:?} must be absolute (end with a dot)")));
    }
    Ok(name.to_lowercase())
}

/// A name typed by a person (the trailing dot optional), lower-cased; never the root.
pub fn parse_user_name(input: &str) -> Result<Name, NameError> {
    let text = if input.ends_with('.') { input.to_owned() } else { format!("{input}.") };
    let name =
        Name::from_ascii(&text).map_err(|e| NameError(format!("{input:?} is not a domain name: {e}")))?;
    if name.is_root() {
        return Err(NameError("the root is not allowed here".into()));
    }
    Ok(name.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_backward_pointers_only() {
        let msg = b"\x03WWW\x07example\x00\x01a\xc0\x00";
        assert_eq!(read_name(msg, 0), Some((b"\x03www\x07example\x00".to_vec(), 13)));
        assert_eq!(read_name(msg, 13), Some((b"\x01a\x03www\x07example\x00".to_vec(), 17)));
        assert_eq!(read_name(b"\xc0\x00", 0), None, "a pointer to itself");
        assert_eq!(read_name(b"\x03ab", 0), None, "truncated");
    }

    #[test]
    fn display_escapes_special_bytes() {
        assert_eq!(display_wire_name(b"\x03a.b\x01\x00\x00"), "a\\.b.\\000.");
        assert_eq!(display_wire_name(b"\x00"), ".");
    }

    #[test]
    fn wire_round_trip() {
        let n = Name::from_ascii("a.B.c.").unwrap();
        assert_eq!(name_to_wire(&n), b"\x01a\x01B\x01c\x00");
        assert_eq!(name_from_wire(b"\x01a\x01B\x01c\x00").unwrap(), n);
        assert_eq!(wire_len(&Name::root()), 1);
    }

    #[test]
    fn user_names_are_absolute_and_lower_cased() {
        assert_eq!(parse_user_name("WWW.Example.com").unwrap().to_ascii(), "www.example.com.");
        assert!(parse_user_name(".").is_err());
        assert!(parse_user_name("a..b").is_err());
        assert!(parse_absolute("relative.name").is_err());
    }
}
