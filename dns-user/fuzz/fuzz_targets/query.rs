//! The query parser and what answers a rejected query: `parse_query` on any bytes; a
//! rejection's error response must keep the contract of every response (bounded for
//! UDP, parses, the query's ID, the question echoed); a signed query's TSIG is verified
//! against a fixed key without panicking.
#![no_main]

use std::sync::LazyLock;

use instadns::{
    engine::Transport,
    protocol::{
        error_response, parse_query,
        tsig::{self, TsigKey},
    },
};
use libfuzzer_sys::fuzz_target;
use tests::{
    fuzz::{FUZZ_SIGNED_AT, fuzz_key, judge_response},
    testrun::OUR_PAYLOAD,
};

/// The key the signed seeds carry, so verification reaches the MAC.
static KEY: LazyLock<TsigKey> = LazyLock::new(fuzz_key);

fuzz_target!(|data: &[u8]| {
    match parse_query(data) {
        Ok(query) => {
            if let Some(signature) = &query.tsig {
                let _ = tsig::verify(data, signature, Some(&KEY), FUZZ_SIGNED_AT);
            }
        }
        Err(rejection) => {
            if let Some(response) = error_response(data, &rejection, OUR_PAYLOAD, None)
                && let Some(why) = judge_response(data, &response, Transport::Udp)
            {
                panic!("error response: {why}\n  query {data:02x?}");
            }
        }
    }
});
