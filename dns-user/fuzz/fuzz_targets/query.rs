//! The query parser and what answers a rejected query: `parse_query` on any bytes; a
//! rejection's error response must keep the contract of every response (bounded for
//! UDP, parses, the query's ID, the question echoed); a signed query's TSIG is verified
//! against a fixed key without panicking.
#![no_main]

use std::sync::LazyLock;

use instadns::{
    engine::Transport,
    protocol::{
        error_response, name_to_wire, parse_absolute, parse_query,
        tsig::{self, TsigKey},
    },
};
use libfuzzer_sys::fuzz_target;
use tests::{fuzz::judge_response, testrun::OUR_PAYLOAD};

/// Signed seeds use this key (hmac-sha256, secret "fuzz"), so verification reaches the MAC.
static KEY: LazyLock<TsigKey> = LazyLock::new(|| TsigKey {
    name: name_to_wire(&parse_absolute("fuzz.").expect("a name")),
    algorithm: name_to_wire(&parse_absolute("hmac-sha256.").expect("a name")),
    hmac: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"fuzz"),
    mac_len: 32,
});
/// A fixed clock: the seeds are signed at this time.
const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    match parse_query(data) {
        Ok(query) => {
            if let Some(signature) = &query.tsig {
                let _ = tsig::verify(data, signature, Some(&KEY), NOW);
            }
        }
        Err(rejection) => {
            if let Some(response) = error_response(data, &rejection, OUR_PAYLOAD)
                && let Some(why) = judge_response(data, &response, Transport::Udp)
            {
                panic!("error response: {why}\n  query {data:02x?}");
            }
        }
    }
});
