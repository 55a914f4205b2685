//! DNS Cookies (RFC 7873, RFC 9018; see `dns_common::cookie`): the query's server cookie
//! checked with the secret userspace shares, and the response's COOKIE option made in
//! `Scratch::cookie_out` exactly as userspace makes it.

use core::ptr::read_unaligned;

use aya_ebpf::{helpers::generated::bpf_ktime_get_coarse_ns, programs::XdpContext};
use dns_common::{
    cookie::{COOKIE_DATA_LEN, ClientAddress, EDNS_OPTION_COOKIE, SERVER_COOKIE_LEN, answer_server_cookie},
    frame::{IPV4_SOURCE, IPV6_SOURCE},
    maps::Scratch,
    stats::Outcome,
};
use dns_ebpf::ptr_at;

use crate::{
    COOKIE_CONFIG,
    parse::{Frame, Query},
};

/// What the query's COOKIE option makes of the response.
#[derive(Clone, Copy)]
pub struct Cookie {
    /// The response carries our COOKIE option (in `Scratch::cookie_out`).
    pub answered: bool,
    /// Its server cookie was valid: the client's address is proven (no rate limit).
    pub proven: bool,
}

const NONE: Cookie = Cookie { answered: false, proven: false };

/// Checks the query's cookie and writes the response's option; none when the query has
/// no cookie or cookies are off (the option is then ignored, as userspace ignores it).
#[inline(always)]
pub fn answer_cookie(
    ctx: &XdpContext,
    scratch: *mut Scratch,
    f: &Frame,
    q: &Query,
) -> Result<Cookie, Outcome> {
    if q.cookie_len == 0 {
        return Ok(NONE);
    }
    let Some(config) = COOKIE_CONFIG.get(0) else { return Ok(NONE) };
    if config.enabled == 0 {
        return Ok(NONE);
    }
    // The address and every buffer stay in scratch memory: the BPF stack is small.
    // SAFETY: this CPU's scratch value; ptr_at checks the packet bounds.
    unsafe {
        let client = &raw mut (*scratch).cookie_client;
        if f.ipv6 {
            let src = ptr_at::<[u8; 16]>(ctx, f.l3 + IPV6_SOURCE).ok_or(Outcome::Error)?;
            *client = ClientAddress::v6(read_unaligned(src));
        } else {
            let src = ptr_at::<[u8; 4]>(ctx, f.l3 + IPV4_SOURCE).ok_or(Outcome::Error)?;
            *client = ClientAddress::v4(read_unaligned(src));
        }
        let monotonic_s = (bpf_ktime_get_coarse_ns() / 1_000_000_000) as i64;
        let now = (monotonic_s + config.unix_minus_monotonic_s) as u32;
        let input = (*scratch).cookie_in.as_ptr();
        let client_cookie = &*(input as *const [u8; 8]);
        let received = &*(input.add(8) as *const [u8; SERVER_COOKIE_LEN]);
        let ours = q.cookie_len == 8 + SERVER_COOKIE_LEN;
        let out = (*scratch).cookie_out.as_mut_ptr();
        *(out as *mut [u8; 4]) = [
            EDNS_OPTION_COOKIE.to_be_bytes()[0],
            EDNS_OPTION_COOKIE.to_be_bytes()[1],
            0,
            COOKIE_DATA_LEN as u8,
        ];
        *(out.add(4) as *mut [u8; 8]) = *client_cookie;
        let server = &mut *(out.add(12) as *mut [u8; SERVER_COOKIE_LEN]);
        let check =
            answer_server_cookie(server, config, client_cookie, ours.then_some(received), &*client, now);
        *(out.add(28) as *mut [u8; 4]) = [0; 4];
        Ok(Cookie { answered: true, proven: check.is_valid() })
    }
}
