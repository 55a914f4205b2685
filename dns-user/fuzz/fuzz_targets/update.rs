//! RFC 2136 UPDATE and RFC 1996 NOTIFY parsing on any bytes: no panic, and the reply to
//! what was parsed or rejected keeps the contract of every response (bounded, parses,
//! the request's ID, the zone section echoed).
#![no_main]

use dns_common::wire::rcode;
use instadns::{
    engine::Transport,
    protocol::{
        Rejection, error_response,
        update::{notify_reply, parse_update},
    },
};
use libfuzzer_sys::fuzz_target;
use tests::{fuzz::judge_response, testrun::OUR_PAYLOAD};

fn check(data: &[u8], what: &str, rejection: &Rejection) {
    if let Some(response) = error_response(data, rejection, OUR_PAYLOAD, None)
        && let Some(why) = judge_response(data, &response, Transport::Udp)
    {
        panic!("{what}: {why}\n  request {data:02x?}");
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_update(data) {
        Ok(update) => {
            assert!(update.zone_section_len <= data.len(), "a zone section beyond the message");
            check(data, "update reply", &update.reply(rcode::NOERROR));
        }
        Err(rejection) => check(data, "update rejection", &rejection),
    }
    match notify_reply(data, |_| true) {
        Ok(reply) | Err(reply) => check(data, "notify reply", &reply),
    }
});
