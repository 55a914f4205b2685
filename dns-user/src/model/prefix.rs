//! Client networks: an IPv4 or IPv6 address with its host bits zero and a prefix length.

use std::{fmt, net::IpAddr, str::FromStr};

use super::Invalid;

/// An IPv4 or IPv6 network: an address with its host bits zero and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    /// The network of `addr`'s first `len` bits (host bits cleared).
    pub fn of(addr: IpAddr, len: u8) -> Self {
        let len = len.min(bits(addr));
        Self { addr: mask(addr, len), len }
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        same_family(self.addr, addr) && mask(addr, self.len) == self.addr
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Prefix {
    type Err = Invalid;

    /// `ADDRESS/LEN` with the host bits zero (a bare address is a host prefix).
    fn from_str(text: &str) -> Result<Self, Invalid> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let addr: IpAddr =
            addr.trim().parse().map_err(|_| Invalid(format!("{text:?} is not an IP network")))?;
        let len = match len {
            Some(l) => l.trim().parse::<u8>().map_err(|_| Invalid(format!("{text:?}: bad prefix length")))?,
            None => bits(addr),
        };
        if len > bits(addr) {
            return Err(Invalid(format!("{text:?}: prefix length above {}", bits(addr))));
        }
        if mask(addr, len) != addr {
            return Err(Invalid(format!(
                "{text:?} has host bits set (the network is {})",
                Prefix::of(addr, len)
            )));
        }
        Ok(Self { addr, len })
    }
}

impl<'de> serde::Deserialize<'de> for Prefix {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|e: Invalid| serde::de::Error::custom(e.0))
    }
}

pub fn bits(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn as_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub(crate) fn mask(addr: IpAddr, len: u8) -> IpAddr {
    let keep = |total: u32, v: u128| if len == 0 { 0 } else { v & (!0u128 << (total - len as u32)) };
    match addr {
        IpAddr::V4(a) => IpAddr::V4((keep(32, u32::from(a) as u128) as u32).into()),
        IpAddr::V6(a) => IpAddr::V6(keep(128, u128::from(a)).into()),
    }
}

/// Leading bits `a` and `b` (same family) share.
pub(crate) fn common_bits(a: IpAddr, b: IpAddr) -> u8 {
    let width = bits(a) as u32;
    let diff = (as_u128(a) ^ as_u128(b)) << (128 - width);
    (diff.leading_zeros().min(width)) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_parse_and_reject_host_bits() {
        assert_eq!("198.18.0.0/15".parse::<Prefix>().unwrap().len, 15);
        assert_eq!("2001:db8::1".parse::<Prefix>().unwrap().len, 128);
        let e = "198.18.1.0/15".parse::<Prefix>().unwrap_err().to_string();
        assert!(e.contains("host bits") && e.contains("198.18.0.0/15"), "{e}");
        assert!("198.18.0.0/33".parse::<Prefix>().is_err());
        assert!("eu".parse::<Prefix>().is_err());
    }
}
