//! DNS server cookies (RFC 7873, RFC 9018; see `dns_common::cookie`): the secrets, the
//! clock the timestamps come from, and the map through which the XDP program gets both,
//! so a cookie either path sent is verified by the other.

use std::{
    net::IpAddr,
    sync::{
        Mutex,
        atomic::{AtomicI64, Ordering},
    },
};

use aya::{
    Ebpf,
    maps::{Array, MapData},
};
use dns_common::cookie::{
    COOKIE_CONFIG_MAP_NAME, COOKIE_DATA_LEN, ClientAddress, CookieCheck, CookieConfig, SERVER_COOKIE_LEN,
    answer_server_cookie, key_words,
};

use super::{MapsError, monotonic_coarse_ns, monotonic_ns};
use crate::{model::time::unix_now, protocol::CookieOption};

/// How cookies are answered (`[cookies]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieSettings {
    /// Off: the option is ignored on both paths (RFC 7873 section 5.2.1).
    pub enabled: bool,
    /// The server secret: nodes of an anycast set share it to accept each other's cookies.
    pub secret: [u8; 16],
    /// The secret before the last rotation: its cookies stay valid (and are replaced).
    pub previous: Option<[u8; 16]>,
}

impl CookieSettings {
    pub fn off() -> Self {
        Self { enabled: false, secret: [0; 16], previous: None }
    }

    /// On, with a secret of this node's own (cookies of other nodes are then replaced).
    pub fn random() -> Self {
        let mut secret = [0u8; 16];
        // getrandom(2) with no flags blocks only before the pool is initialized at boot.
        // SAFETY: writes at most 16 bytes into `secret`.
        let n = unsafe { libc::getrandom(secret.as_mut_ptr().cast(), secret.len(), 0) };
        if n != secret.len() as isize {
            // Never seen on Linux >= 3.17; a clock-derived secret still works, only guessable.
            secret[..8].copy_from_slice(&monotonic_ns().to_le_bytes());
            secret[8..].copy_from_slice(&unix_now().to_le_bytes());
        }
        Self { enabled: true, secret, previous: None }
    }
}

pub struct ServerCookies {
    /// The secrets; its clock offset is `unix_minus_monotonic_s`'s value at start.
    config: CookieConfig,
    /// Unix time minus the coarse monotonic clock, in seconds, as both paths use it now.
    unix_minus_monotonic_s: AtomicI64,
    /// The XDP program's copy (absent without the fast path).
    map: Option<Mutex<Array<MapData, CookieConfig>>>,
}

/// The wall clock may be stepped or slewed (NTP) while the monotonic clock is not: a
/// drift this large is followed (smaller ones are the two clocks' rounding).
const CLOCK_STEP_S: i64 = 2;

fn unix_minus_monotonic_s() -> i64 {
    unix_now() - (monotonic_coarse_ns() / 1_000_000_000) as i64
}

impl ServerCookies {
    /// Cookies answered by userspace only (no fast path, and tests).
    pub fn in_memory(settings: &CookieSettings) -> Self {
        let config = config_of(settings);
        Self { config, unix_minus_monotonic_s: config.unix_minus_monotonic_s.into(), map: None }
    }

    /// Takes the cookie map of the loaded program and writes the secrets and the clock.
    pub fn kernel(ebpf: &mut Ebpf, settings: &CookieSettings) -> Result<Self, MapsError> {
        let map =
            ebpf.take_map(COOKIE_CONFIG_MAP_NAME).ok_or(MapsError::MissingMap(COOKIE_CONFIG_MAP_NAME))?;
        let mut map: Array<MapData, CookieConfig> = Array::try_from(map)?;
        let config = config_of(settings);
        map.set(0, config, 0)?;
        Ok(Self {
            config,
            unix_minus_monotonic_s: config.unix_minus_monotonic_s.into(),
            map: Some(Mutex::new(map)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled != 0
    }

    /// Now, in seconds since the epoch, on the clock the XDP program reads (monotonic
    /// time plus the offset measured at start), so both paths date cookies alike.
    pub fn now(&self) -> u32 {
        ((monotonic_coarse_ns() / 1_000_000_000) as i64 + self.unix_minus_monotonic_s.load(Ordering::Relaxed))
            as u32
    }

    /// Follows the wall clock when it moved against the monotonic one (an NTP step, or a
    /// slew adding up over weeks), in userspace and in the program's map alike, so
    /// cookies stay dated as other servers of the set date them. Returns whether it did.
    pub fn follow_clock(&self) -> bool {
        let now = unix_minus_monotonic_s();
        let held = self.unix_minus_monotonic_s.load(Ordering::Relaxed);
        if (now - held).abs() < CLOCK_STEP_S {
            return false;
        }
        if let Some(map) = &self.map {
            let config = CookieConfig { unix_minus_monotonic_s: now, ..self.config };
            if let Err(e) = map.lock().unwrap_or_else(|p| p.into_inner()).set(0, config, 0) {
                tracing::warn!(error = %e, "writing the cookie clock to the fast path failed");
                return false;
            }
        }
        self.unix_minus_monotonic_s.store(now, Ordering::Relaxed);
        tracing::info!(moved_s = now - held, "the wall clock moved: cookie timestamps follow it");
        true
    }

    /// The COOKIE option data of the response to `cookie` from `client`, and what the
    /// server cookie received was worth; None when cookies are off.
    pub fn respond(
        &self,
        cookie: &CookieOption,
        client: IpAddr,
    ) -> Option<([u8; COOKIE_DATA_LEN], CookieCheck)> {
        if !self.enabled() {
            return None;
        }
        let address = match client.to_canonical() {
            IpAddr::V4(a) => ClientAddress::v4(a.octets()),
            IpAddr::V6(a) => ClientAddress::v6(a.octets()),
        };
        let now = self.now();
        let server: Option<&[u8; SERVER_COOKIE_LEN]> = cookie.server().try_into().ok();
        let mut server_out = [0u8; SERVER_COOKIE_LEN];
        let check =
            answer_server_cookie(&mut server_out, &self.config, &cookie.client, server, &address, now);
        let mut out = [0u8; COOKIE_DATA_LEN];
        out[..8].copy_from_slice(&cookie.client);
        out[8..].copy_from_slice(&server_out);
        Some((out, check))
    }
}

fn config_of(settings: &CookieSettings) -> CookieConfig {
    CookieConfig {
        enabled: u32::from(settings.enabled),
        has_previous: u32::from(settings.previous.is_some()),
        secret: key_words(&settings.secret),
        previous: key_words(&settings.previous.unwrap_or_default()),
        unix_minus_monotonic_s: unix_minus_monotonic_s(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(client: &[u8; 8], server: &[u8]) -> CookieOption {
        let mut data = client.to_vec();
        data.extend_from_slice(server);
        crate::protocol::query::test_cookie(&data).expect("well formed")
    }

    #[test]
    fn a_new_client_gets_a_cookie_it_can_send_back_and_another_node_with_the_secret_accepts() {
        let settings = CookieSettings { enabled: true, secret: *b"0123456789abcdef", previous: None };
        let node = ServerCookies::in_memory(&settings);
        let client: IpAddr = "198.18.0.2".parse().unwrap();
        let (first, check) = node.respond(&cookie(b"clientck", &[]), client).expect("on");
        assert_eq!((check, &first[..8]), (CookieCheck::Invalid, &b"clientck"[..]));
        let again = node.respond(&cookie(b"clientck", &first[8..]), client).expect("on");
        assert_eq!(again, (first, CookieCheck::Fresh), "sent back as it is");
        let other = ServerCookies::in_memory(&settings);
        assert_eq!(
            other.respond(&cookie(b"clientck", &first[8..]), client).map(|r| r.1),
            Some(CookieCheck::Fresh)
        );
        let stranger = ServerCookies::in_memory(&CookieSettings::random());
        assert_eq!(
            stranger.respond(&cookie(b"clientck", &first[8..]), client).map(|r| r.1),
            Some(CookieCheck::Invalid)
        );
        assert_eq!(
            ServerCookies::in_memory(&CookieSettings::off()).respond(&cookie(b"clientck", &[]), client),
            None
        );
    }

    #[test]
    fn timestamps_follow_a_wall_clock_that_moved() {
        let node = ServerCookies::in_memory(&CookieSettings::random());
        assert!(!node.follow_clock(), "nothing moved");
        // As if the wall clock had been stepped 100 s since the offset was measured.
        node.unix_minus_monotonic_s.fetch_sub(100, Ordering::Relaxed);
        assert!(unix_now().abs_diff(node.now() as i64) >= 99);
        assert!(node.follow_clock(), "followed");
        assert!(unix_now().abs_diff(node.now() as i64) <= 1, "dated by the wall clock again");
    }
}
