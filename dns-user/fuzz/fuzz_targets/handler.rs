//! The query path, bytes to response bytes, through the sans-IO handler against the
//! fixture catalog (the demo data plus `tests::data::fixture_sql`): no panic, and every
//! response is bounded, parses, is a response with the query's ID and echoes its
//! question (`tests::fuzz::judge_response`, the contract `handler_fuzz` checks too).
//! The first input byte picks the transport (bit 0) and the client's family (bit 1).
#![no_main]

use std::{net::IpAddr, sync::LazyLock};

use instadns::engine::Transport;
use libfuzzer_sys::fuzz_target;
use tests::{
    data::fixture_sql,
    fuzz::judge_response,
    netns::{CLIENT_V4, CLIENT_V6},
    testrun::UserspaceRig,
};

static RIG: LazyLock<UserspaceRig> = LazyLock::new(|| UserspaceRig::with_sql(&fixture_sql()));

fuzz_target!(|data: &[u8]| {
    let Some((&how, message)) = data.split_first() else { return };
    let transport = if how & 1 == 0 { Transport::Udp } else { Transport::Tcp };
    let client: IpAddr = if how & 2 == 0 { CLIENT_V4.into() } else { CLIENT_V6.into() };
    if let Some(response) = RIG.rt.block_on(RIG.handler.handle(message, transport, client))
        && let Some(why) = judge_response(message, &response, transport)
    {
        panic!("{why}\n  query {message:02x?}");
    }
});
