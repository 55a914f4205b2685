//! How a cluster answers: address order, picks, failover and health checks, and its
//! addresses with their steering attributes.

use std::net::IpAddr;

use super::Invalid;

super::setting!(
    /// The order of a host answer's addresses.
    AddressOrder, "address order", {
        /// As stored, every time.
        Fixed = "fixed",
        /// Rotated per response (round robin).
        Rotate = "rotate",
    }
);

super::setting!(
    /// How many addresses a host answer carries.
    Pick, "pick", {
        /// Every address (of the failover queue position and territory answering).
        All = "all",
        /// One, picked by weight per query.
        One = "one",
    }
);

super::setting!(
    /// What a failover queue answers when every address is down.
    Fallback, "fallback", {
        /// Every address.
        All = "all",
        /// The last queue position's addresses.
        Last = "last",
    }
);

super::setting!(
    /// What a health probe does.
    CheckKind, "check kind", {
        /// A TCP connection is accepted.
        Tcp = "tcp",
        /// `GET PATH` answers the expected status.
        Http = "http",
    }
);

/// Most weight an address may carry.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// An address of a cluster with its steering attributes, as the CLI writes it:
/// `IP[,weight=N][,queue=N][,territory=NAME]`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AddressSpec {
    #[schema(value_type = String)]
    pub ip: IpAddr,
    /// Share of `pick one` answers (0: never picked).
    pub weight: u32,
    /// Failover queue position: lower answers first while healthy.
    pub queue: u32,
    /// The territory whose clients get this address (None: everyone else).
    pub territory: Option<String>,
}

impl AddressSpec {
    pub fn new(ip: IpAddr) -> Self {
        Self { ip, weight: 1, queue: 0, territory: None }
    }
}

impl std::str::FromStr for AddressSpec {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Self, Invalid> {
        let mut parts = text.split(',');
        let ip = parts.next().unwrap_or_default().trim();
        let ip: IpAddr = ip.parse().map_err(|_| Invalid(format!("{ip:?} is not an IPv4 or IPv6 address")))?;
        let mut spec = Self::new(ip);
        for part in parts {
            let (key, value) =
                part.split_once('=').ok_or_else(|| Invalid(format!("{part:?}: use KEY=VALUE")))?;
            let number =
                || value.parse::<u32>().map_err(|_| Invalid(format!("{key}={value:?}: not a number")));
            match key.trim() {
                "weight" => {
                    spec.weight = number()?;
                    if spec.weight > MAX_WEIGHT {
                        return Err(Invalid(format!("weight={value}: at most {MAX_WEIGHT}")));
                    }
                }
                "queue" => spec.queue = number()?,
                "territory" => spec.territory = Some(value.trim().to_owned()),
                other => return Err(Invalid(format!("{other:?}: use weight, queue or territory"))),
            }
        }
        Ok(spec)
    }
}

impl std::fmt::Display for AddressSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.ip)?;
        if self.weight != 1 {
            write!(f, ",weight={}", self.weight)?;
        }
        if self.queue != 0 {
            write!(f, ",queue={}", self.queue)?;
        }
        if let Some(t) = &self.territory {
            write!(f, ",territory={t}")?;
        }
        Ok(())
    }
}

/// What and where a health check probes: `tcp:PORT` or `http:PORT/PATH`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CheckTarget {
    pub kind: CheckKind,
    pub port: u16,
    /// HTTP: the path requested ("/" for TCP checks).
    pub path: String,
}

impl std::str::FromStr for CheckTarget {
    type Err = Invalid;

    fn from_str(text: &str) -> Result<Self, Invalid> {
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| Invalid(format!("{text:?}: use tcp:PORT or http:PORT/PATH")))?;
        let kind: CheckKind = kind.parse()?;
        let (port, path) = match (kind, rest.find('/')) {
            (CheckKind::Http, Some(i)) => (&rest[..i], rest[i..].to_owned()),
            (CheckKind::Http, None) | (CheckKind::Tcp, _) => (rest, "/".to_owned()),
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| Invalid(format!("{port:?} is not a port")))?;
        Ok(Self { kind, port, path })
    }
}

impl std::fmt::Display for CheckTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            CheckKind::Tcp => write!(f, "tcp:{}", self.port),
            CheckKind::Http => write!(f, "http:{}{}", self.port, self.path),
        }
    }
}

/// A cluster's health check.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct HealthCheck {
    #[serde(flatten)]
    pub target: CheckTarget,
    /// HTTP: the Host header (None: the address).
    pub host: Option<String>,
    /// HTTP: the status expected.
    pub expect_status: u16,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    /// Consecutive successes that bring a down address back.
    pub rise: u32,
    /// Consecutive failures that take an address down.
    pub fall: u32,
}

/// Defaults of a health check's settings.
pub mod check_defaults {
    pub const EXPECT_STATUS: u16 = 200;
    pub const INTERVAL_MS: u32 = 5000;
    pub const TIMEOUT_MS: u32 = 2000;
    pub const RISE: u32 = 2;
    pub const FALL: u32 = 3;
}

impl HealthCheck {
    /// A check of `target` with the default settings.
    pub fn new(target: CheckTarget) -> Self {
        use check_defaults::*;
        Self {
            target,
            host: None,
            expect_status: EXPECT_STATUS,
            interval_ms: INTERVAL_MS,
            timeout_ms: TIMEOUT_MS,
            rise: RISE,
            fall: FALL,
        }
    }

    /// Whether the settings make sense together.
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |what: String| Err(Invalid(what));
        let t = &self.target;
        if t.port == 0 {
            return bad("health check port 0: must be 1-65535".into());
        }
        if !t.path.starts_with('/') || t.path.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return bad(format!("health check path {:?}: an absolute path without spaces", t.path));
        }
        if let Some(h) = &self.host
            && (h.is_empty() || h.chars().any(|ch| ch.is_whitespace() || ch.is_control()))
        {
            return bad(format!("health check host {h:?}: a host name without spaces"));
        }
        if !(100..=599).contains(&self.expect_status) {
            return bad(format!("expected HTTP status {}: must be 100-599", self.expect_status));
        }
        if self.interval_ms < 100 {
            return bad(format!("check interval {} ms: at least 100 ms", self.interval_ms));
        }
        if self.timeout_ms < 10 || self.timeout_ms > self.interval_ms {
            return bad(format!(
                "check timeout {} ms: at least 10 ms and at most the interval ({} ms)",
                self.timeout_ms, self.interval_ms
            ));
        }
        if self.rise == 0 || self.fall == 0 {
            return bad(format!("rise {} and fall {}: at least 1 each", self.rise, self.fall));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_explain_bad_values() {
        assert_eq!("rotate".parse::<AddressOrder>().unwrap(), AddressOrder::Rotate);
        assert_eq!(
            "x".parse::<AddressOrder>().unwrap_err().to_string(),
            "address order \"x\" is not one of fixed, rotate"
        );
        assert_eq!(Pick::One.to_string(), "one");
        assert!("sideways".parse::<Fallback>().unwrap_err().to_string().contains("fallback \"sideways\""));
    }

    #[test]
    fn check_targets_and_addresses_round_trip() {
        for text in ["tcp:443", "http:8080/healthz", "http:80/"] {
            assert_eq!(text.parse::<CheckTarget>().unwrap().to_string(), text);
        }
        assert_eq!("http:80".parse::<CheckTarget>().unwrap().path, "/");
        assert!("udp:53".parse::<CheckTarget>().unwrap_err().to_string().contains("check kind \"udp\""));
        assert!("tcp:0".parse::<CheckTarget>().is_err());
        let a: AddressSpec = "192.0.2.1,weight=3,queue=1,territory=eu".parse().unwrap();
        assert_eq!(a.to_string(), "192.0.2.1,weight=3,queue=1,territory=eu");
        assert!("192.0.2.1,weight=2000000".parse::<AddressSpec>().is_err());
        let mut c = HealthCheck::new("http:80/x".parse().unwrap());
        assert!(c.validate().is_ok());
        c.timeout_ms = 9000;
        assert!(c.validate().unwrap_err().0.contains("check timeout 9000 ms"));
    }
}
