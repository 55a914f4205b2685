//! The wire name decoder and the name parsers: `read_name` (compression pointers
//! followed backwards only) at every offset of the input's first bytes; a name it
//! returns is at most 255 bytes of well-formed labels, lower-cased, that hickory
//! accepts; the text parsers never panic.
#![no_main]

use dns_common::limits::MAX_NAME_LEN;
use instadns::protocol::name::{
    display_wire_name, name_from_wire, parse_absolute, parse_user_name, read_name, uncompressed_name_len,
};
use libfuzzer_sys::fuzz_target;

/// Offsets tried per input: names start anywhere in a message.
const OFFSETS: usize = 16;

fuzz_target!(|data: &[u8]| {
    for at in 0..data.len().min(OFFSETS) {
        let _ = uncompressed_name_len(data, at);
        let Some((name, next)) = read_name(data, at) else { continue };
        assert!(name.len() <= MAX_NAME_LEN, "a {}-byte name", name.len());
        assert!(next <= data.len() && next > at, "read_name ends at {next} of {}", data.len());
        assert!(!name.iter().any(u8::is_ascii_uppercase), "not lower-cased: {name:02x?}");
        if let Err(e) = name_from_wire(&name) {
            panic!("read_name gave {name:02x?}, which hickory refuses: {e}");
        }
        let _ = display_wire_name(&name);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_absolute(text);
        let _ = parse_user_name(text);
    }
});
