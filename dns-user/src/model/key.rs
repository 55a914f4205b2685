//! TSIG keys (RFC 8945): their algorithms, secrets and scopes. A key may be limited to
//! some zones, some names in them (`_acme-challenge.*`) and some operations.

use base64::Engine as _;
use hickory_proto::rr::Name;

use super::Invalid;
use crate::protocol::{parse_absolute, parse_user_name};

super::setting!(
    /// A TSIG algorithm (RFC 8945 section 6). HMAC-MD5 is not offered.
    TsigAlgorithm, "TSIG algorithm", {
        HmacSha1 = "hmac-sha1",
        HmacSha256 = "hmac-sha256",
        HmacSha384 = "hmac-sha384",
        HmacSha512 = "hmac-sha512",
    }
);

impl TsigAlgorithm {
    /// The algorithm's name in TSIG records, lower-case, absolute.
    pub fn wire_name(self) -> String {
        format!("{}.", self.as_str())
    }

    /// The algorithm whose TSIG name is `name` (lower-case, absolute or not).
    pub fn from_wire_name(name: &str) -> Option<Self> {
        let name = name.strip_suffix('.').unwrap_or(name);
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }

    pub fn hmac(self) -> ring::hmac::Algorithm {
        match self {
            Self::HmacSha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::HmacSha256 => ring::hmac::HMAC_SHA256,
            Self::HmacSha384 => ring::hmac::HMAC_SHA384,
            Self::HmacSha512 => ring::hmac::HMAC_SHA512,
        }
    }

    /// The length of the full MAC, and of a new key's secret.
    pub const fn output_len(self) -> usize {
        match self {
            Self::HmacSha1 => 20,
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }
}

super::setting!(
    /// What a key may be used for.
    Operation, "key operation", {
        /// RFC 2136 dynamic updates.
        Update = "update",
        /// Zone transfers (AXFR, IXFR).
        Transfer = "transfer",
        /// Signed queries.
        Query = "query",
    }
);

/// A key's secret: bytes, written as base64. Empty (the default) for a key read from
/// the HTTP API, which never answers a secret but once, when the key is made.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub Vec<u8>);

impl Secret {
    /// A new random secret of `len` bytes.
    pub fn generate(len: usize) -> Self {
        let mut bytes = vec![0u8; len];
        rand::fill(&mut bytes[..]);
        Self(bytes)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }

    pub fn from_base64(text: &str) -> Result<Self, Invalid> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| Invalid(format!("secret is not base64: {e}")))?;
        if bytes.is_empty() {
            return Err(Invalid("secret is empty".into()));
        }
        Ok(Self(bytes))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Names a key may touch: `_acme-challenge.*` (a leading literal part, then `*` for one
/// or more labels) or a name (and, with a leading `*.`, the names below it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamePattern {
    text: String,
    /// Labels before a trailing `*`, or the whole name's labels.
    prefix: Vec<Vec<u8>>,
    /// The labels after a leading `*.`.
    suffix: Vec<Vec<u8>>,
    kind: PatternKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatternKind {
    /// `a.b.*`: names starting with these labels, with at least one more.
    Prefix,
    /// `*.example.org`: names below it.
    Below,
    /// `www.example.org`: that name.
    Exact,
}

impl NamePattern {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let trimmed = text.trim().trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = trimmed.split('.').collect();
        let bad =
            || Invalid(format!("name pattern {text:?}: use _acme-challenge.*, *.example.org or a name"));
        if trimmed.is_empty() || labels.iter().any(|l| l.is_empty() || l.len() > 63) {
            return Err(bad());
        }
        let stars = labels.iter().filter(|l| **l == "*").count();
        let to_bytes = |ls: &[&str]| ls.iter().map(|l| l.as_bytes().to_vec()).collect::<Vec<_>>();
        let (kind, prefix, suffix) = match (stars, labels.first(), labels.last()) {
            (0, _, _) => (PatternKind::Exact, to_bytes(&labels), Vec::new()),
            (1, _, Some(&"*")) if labels.len() > 1 => {
                (PatternKind::Prefix, to_bytes(&labels[..labels.len() - 1]), Vec::new())
            }
            (1, Some(&"*"), _) if labels.len() > 1 => {
                (PatternKind::Below, Vec::new(), to_bytes(&labels[1..]))
            }
            _ => return Err(bad()),
        };
        Ok(Self { text: trimmed, prefix, suffix, kind })
    }

    /// Whether `name` (any case) matches.
    pub fn matches(&self, name: &Name) -> bool {
        let labels: Vec<Vec<u8>> = name.iter().map(|l| l.to_ascii_lowercase()).collect();
        match self.kind {
            PatternKind::Exact => labels == self.prefix,
            PatternKind::Prefix => labels.len() > self.prefix.len() && labels.starts_with(&self.prefix),
            PatternKind::Below => labels.len() > self.suffix.len() && labels.ends_with(&self.suffix),
        }
    }
}

impl std::fmt::Display for NamePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for NamePattern {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Self, Invalid> {
        Self::parse(text)
    }
}

/// What a key may do: empty lists mean every zone and every name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyScope {
    pub zones: Vec<Name>,
    pub names: Vec<NamePattern>,
    pub operations: Vec<Operation>,
}

impl KeyScope {
    /// Whether the key may do `operation` on `name` of zone `apex`.
    pub fn allows(&self, operation: Operation, apex: &Name, name: &Name) -> bool {
        self.operations.contains(&operation)
            && (self.zones.is_empty() || self.zones.contains(apex))
            && (self.names.is_empty() || self.names.iter().any(|p| p.matches(name)))
    }

    /// Whether the key may ask for the SOA of zone `apex` signed although its name
    /// patterns leave the apex out: a key that may update or transfer something in the
    /// zone needs to find the zone first, and updaters do that with a signed SOA query
    /// of each parent (certbot's rfc2136 plugin, nsupdate without `zone`). The SOA is
    /// what an unsigned query gets anyway.
    pub fn locates(&self, apex: &Name) -> bool {
        self.operations.iter().any(|o| matches!(o, Operation::Update | Operation::Transfer))
            && (self.zones.is_empty() || self.zones.contains(apex))
    }

    /// The scope as stored: space-separated lists.
    pub fn to_columns(&self) -> (String, String, String) {
        let join = |items: Vec<String>| items.join(" ");
        (
            join(self.zones.iter().map(|z| z.to_ascii()).collect()),
            join(self.names.iter().map(|p| p.to_string()).collect()),
            join(self.operations.iter().map(|o| o.to_string()).collect()),
        )
    }

    pub fn from_columns(zones: &str, names: &str, operations: &str) -> Result<Self, Invalid> {
        Ok(Self {
            zones: zones
                .split_whitespace()
                .map(|z| parse_absolute(z).map_err(|e| Invalid(format!("zone {z:?}: {e}"))))
                .collect::<Result<_, _>>()?,
            names: names.split_whitespace().map(NamePattern::parse).collect::<Result<_, _>>()?,
            operations: operations.split_whitespace().map(str::parse).collect::<Result<_, _>>()?,
        })
    }
}

/// A key's name: a domain name, lower-case, absolute (`certbot.` for `certbot`).
pub fn key_name(text: &str) -> Result<Name, Invalid> {
    if text.trim().trim_end_matches('.').is_empty() {
        return Err(Invalid("a key needs a name, e.g. certbot or acme.example.org".into()));
    }
    parse_user_name(text).map_err(|e| Invalid(format!("key name {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        parse_absolute(s).unwrap()
    }

    #[test]
    fn name_patterns() {
        let acme = NamePattern::parse("_acme-challenge.*").unwrap();
        assert!(acme.matches(&name("_acme-challenge.www.example.org.")));
        assert!(acme.matches(&name("_ACME-challenge.example.org.")));
        assert!(!acme.matches(&name("_acme-challenge.")), "needs a label after");
        assert!(!acme.matches(&name("www.example.org.")));
        let below = NamePattern::parse("*.apps.example.org").unwrap();
        assert!(below.matches(&name("a.b.apps.example.org.")) && !below.matches(&name("apps.example.org.")));
        let exact = NamePattern::parse("www.example.org.").unwrap();
        assert!(exact.matches(&name("WWW.example.org.")) && !exact.matches(&name("x.www.example.org.")));
        for bad in ["", "a.*.b", "*", "*.*", "a..b"] {
            assert!(NamePattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_round_trip_and_allow() {
        let scope = KeyScope {
            zones: vec![name("example.org.")],
            names: vec![NamePattern::parse("_acme-challenge.*").unwrap()],
            operations: vec![Operation::Update],
        };
        let (z, n, o) = scope.to_columns();
        assert_eq!(KeyScope::from_columns(&z, &n, &o).unwrap(), scope);
        let apex = name("example.org.");
        assert!(scope.allows(Operation::Update, &apex, &name("_acme-challenge.www.example.org.")));
        assert!(!scope.allows(Operation::Update, &apex, &name("www.example.org.")));
        assert!(!scope.allows(Operation::Transfer, &apex, &name("_acme-challenge.example.org.")));
        assert!(!scope.allows(Operation::Query, &apex, &apex), "the key may not query");
        assert!(scope.locates(&apex), "an updater may find its zone");
        assert!(!scope.locates(&name("example.net.")), "but not other zones");
        assert!(!scope.allows(
            Operation::Update,
            &name("example.com."),
            &name("_acme-challenge.example.com.")
        ));
    }

    #[test]
    fn secrets_and_algorithms() {
        let s = Secret::generate(32);
        assert_eq!(Secret::from_base64(&s.to_base64()).unwrap(), s);
        assert!(Secret::from_base64("not base64!").is_err());
        assert_eq!(TsigAlgorithm::from_wire_name("hmac-sha256."), Some(TsigAlgorithm::HmacSha256));
        assert_eq!(TsigAlgorithm::from_wire_name("hmac-md5.sig-alg.reg.int."), None);
    }
}
