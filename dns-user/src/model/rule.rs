//! What a name rule answers.

super::setting!(
    /// The kind of a name rule.
    RuleKind, "rule kind", {
        /// `CNAME` to the cluster's target for the captured service.
        Service = "service",
        /// `A`/`AAAA` of the cluster's load balancer.
        Host = "host",
        /// `TXT` describing the instance's last move (old cluster, new cluster, time).
        Tombstone = "tombstone",
    }
);

impl RuleKind {
    /// The TTL a rule of this kind gets when none is given.
    pub const fn default_ttl(self) -> u32 {
        match self {
            RuleKind::Service => 300,
            RuleKind::Host | RuleKind::Tombstone => 60,
        }
    }
}

/// A rule as the CLI writes it: `PATTERN=KIND[:TTL]`, e.g. `{service}-{id}.apps=service:300`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    pub pattern: super::Pattern,
    pub kind: RuleKind,
    pub ttl: u32,
}

impl std::str::FromStr for RuleSpec {
    type Err = super::Invalid;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || super::Invalid(format!("{text:?}: expected PATTERN=KIND[:TTL]"));
        let (pattern, rest) = text.rsplit_once('=').ok_or_else(invalid)?;
        let (kind, ttl) = match rest.split_once(':') {
            Some((k, t)) => (
                k,
                Some(
                    t.parse::<u32>()
                        .map_err(|_| super::Invalid(format!("{text:?}: TTL {t:?} is not a number")))?,
                ),
            ),
            None => (rest, None),
        };
        if pattern.is_empty() || kind.is_empty() {
            return Err(invalid());
        }
        let kind: RuleKind = kind.parse()?;
        Ok(Self { pattern: pattern.parse()?, kind, ttl: ttl.unwrap_or(kind.default_ttl()) })
    }
}

impl std::fmt::Display for RuleSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}:{}", self.pattern, self.kind, self.ttl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_specs_parse_with_default_ttls() {
        let r: RuleSpec = "{service}-{id}.apps=service".parse().unwrap();
        assert_eq!((r.kind, r.ttl), (RuleKind::Service, 300));
        assert_eq!("{id}=host:45".parse::<RuleSpec>().unwrap().to_string(), "{id}=host:45");
        assert!("{nope}=host".parse::<RuleSpec>().unwrap_err().0.contains("{nope}"));
        assert!("{id}=cname".parse::<RuleSpec>().unwrap_err().0.contains("rule kind \"cname\""));
        assert!("{id}".parse::<RuleSpec>().is_err());
    }
}
