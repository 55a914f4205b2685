//! Bearer tokens of the HTTP management API: what a token may do (read, or read and
//! write) and where (every zone, or some), its secret, and the hash the database keeps.

use base64::Engine as _;

use super::{Invalid, names, setting};

setting!(
    /// What a token may do.
    Access, "token access", {
        /// GET only.
        Read = "read",
        /// Everything its zones allow, reads included.
        Write = "write",
    }
);

/// A token's scope: its access, and the zones it may touch (empty: every zone, and the
/// nouns no zone owns: clusters, instances, territories, keys, the fleet, the audit log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenScope {
    pub access: Access,
    /// Absolute, lower-case apexes.
    pub zones: Vec<String>,
}

impl TokenScope {
    pub fn new(access: Access, zones: &[String]) -> Result<Self, Invalid> {
        let mut zones =
            zones.iter().map(|z| names::absolute(z, "token zone")).collect::<Result<Vec<_>, _>>()?;
        zones.sort();
        zones.dedup();
        Ok(Self { access, zones })
    }

    /// Whether the token may act on every zone and the nouns outside zones.
    pub fn is_global(&self) -> bool {
        self.zones.is_empty()
    }

    /// Whether the token may do `access` in the zone `apex` (absolute, lower-case).
    pub fn permits_zone(&self, access: Access, apex: &str) -> bool {
        self.permits(access) && (self.is_global() || self.zones.iter().any(|z| z == apex))
    }

    /// Whether the token's access covers `access` (write covers read).
    pub fn permits(&self, access: Access) -> bool {
        access <= self.access
    }
}

/// Every token starts with this, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "instadns_";

/// A new token: the prefix and 32 random bytes, base64url.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database keeps of a token: its SHA-256, hex. A fast hash is enough (no
/// salt, no stretching): the token is 256 random bits, not a password to guess, and the
/// hash must be looked up on every request.
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_covers_read_and_zones_bound_a_token() {
        let zoned = TokenScope::new(Access::Write, &["Example.COM".into()]).unwrap();
        assert_eq!(zoned.zones, ["example.com."]);
        assert!(zoned.permits_zone(Access::Read, "example.com."));
        assert!(zoned.permits_zone(Access::Write, "example.com."));
        assert!(!zoned.permits_zone(Access::Read, "example.org."));
        assert!(!zoned.is_global());
        let reader = TokenScope::new(Access::Read, &[]).unwrap();
        assert!(reader.permits_zone(Access::Read, "example.org."));
        assert!(!reader.permits_zone(Access::Write, "example.org."));
    }

    #[test]
    fn tokens_are_random_and_hashed_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43, "{a}");
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
