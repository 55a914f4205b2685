//! Record data in zone-file (presentation) form.

use hickory_proto::rr::RData;

/// RDATA in zone-file form. TXT strings are quoted and escaped (hickory prints them
/// bare, which would not read back).
pub fn presentation(data: &RData) -> String {
    match data {
        RData::TXT(txt) => txt.txt_data.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(" "),
        // hickory ends every SvcParam value list with a comma ("alpn=h2,h3,"), which
        // reads back but is not the RFC 9460 form.
        RData::SVCB(_) | RData::HTTPS(_) => {
            data.to_string().split(' ').map(|p| p.trim_end_matches(',')).collect::<Vec<_>>().join(" ")
        }
        other => other.to_string(),
    }
}

/// A character-string in quotes, with `"` and `\` escaped and bytes outside printable
/// ASCII as `\DDD` (RFC 1035 section 5.1).
pub fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    escape_into(&mut out, bytes, b"\"\\", b' ');
    out.push('"');
    out
}

/// Appends `bytes` in presentation form: the `special` bytes behind a backslash, bytes
/// from `first_plain` to `~` as they are, every other byte as `\DDD`.
pub fn escape_into(out: &mut String, bytes: &[u8], special: &[u8], first_plain: u8) {
    for &b in bytes {
        if special.contains(&b) {
            out.push('\\');
            out.push(b as char);
        } else if (first_plain..=b'~').contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:03}"));
        }
    }
}
