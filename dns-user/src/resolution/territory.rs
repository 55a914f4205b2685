//! Territories: named sets of client networks that get their own directional answers.
//!
//! The XDP program finds a client's territory with the kernel's longest-prefix-match
//! trie; userspace answers the same from [`Territories::lookup`] (queries that reach it,
//! TCP) and [`Territories::lookup_subnet`] (EDNS Client Subnet, with the scope the answer
//! holds for, RFC 7871 section 7.2.1).

use std::net::IpAddr;

use dns_common::maps::MAX_TERRITORIES;

use crate::model::prefix::{Prefix, bits, common_bits, mask, same_family};

/// The territories by their stable index, 1 to [`MAX_TERRITORIES`] (0 is "no
/// territory"). An index belongs to its territory for its whole life, so removing one
/// never gives another's clients its answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Territories {
    /// (name, index).
    names: Vec<(String, u8)>,
    /// (prefix, territory index), in no particular order.
    prefixes: Vec<(Prefix, u8)>,
}

impl Territories {
    /// Builds the table; the warnings name each skipped row.
    pub fn build(names: &[(String, u8)], prefixes: &[(String, String)]) -> (Self, Vec<String>) {
        let mut warnings = Vec::new();
        let mut table = Self::default();
        for (name, index) in names {
            if !(1..=MAX_TERRITORIES as u8).contains(index) || table.name(*index).is_some() {
                warnings.push(format!(
                    "territory {name} skipped: index {index} is taken or outside 1..={MAX_TERRITORIES}"
                ));
                continue;
            }
            table.names.push((name.clone(), *index));
        }
        for (territory, text) in prefixes {
            let Some(index) = table.index(territory) else { continue };
            match text.parse::<Prefix>() {
                Ok(p) => table.prefixes.push((p, index)),
                Err(e) => warnings.push(format!("prefix of territory {territory} skipped: {e}")),
            }
        }
        (table, warnings)
    }

    /// The index of territory `name`.
    pub fn index(&self, name: &str) -> Option<u8> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, i)| *i)
    }

    pub fn name(&self, index: u8) -> Option<&str> {
        self.names.iter().find(|(_, i)| *i == index).map(|(n, _)| n.as_str())
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// The highest index in use (0: none): directional answers hold a variant per index
    /// up to it.
    pub fn highest_index(&self) -> u8 {
        self.names.iter().map(|(_, i)| *i).max().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Every (prefix, territory index), as the kernel's tries hold them.
    pub fn prefixes(&self) -> &[(Prefix, u8)] {
        &self.prefixes
    }

    /// The territory of a client address (0: none), by longest prefix match.
    pub fn lookup(&self, client: IpAddr) -> u8 {
        self.longest_match(client, bits(client)).map_or(0, |(_, t)| t)
    }

    /// The territory of an EDNS Client Subnet (its first `source_len` bits of `addr`) and
    /// the SCOPE PREFIX-LENGTH the answer is valid for: the shortest prefix of the
    /// address inside which every client maps to that territory.
    ///
    /// A SOURCE PREFIX-LENGTH of 0 (the client asked for privacy, section 7.1.2) gets the
    /// default answer with scope 0: the resolver will give it to all its clients.
    pub fn lookup_subnet(&self, addr: IpAddr, source_len: u8) -> (u8, u8) {
        if source_len == 0 {
            return (0, 0);
        }
        let source_len = source_len.min(bits(addr));
        let addr = mask(addr, source_len);
        let matched = self.longest_match(addr, source_len);
        let (matched_len, territory) = matched.map_or((0, 0), |(p, t)| (p.len, t));
        let mut scope = matched_len;
        for (q, t) in &self.prefixes {
            if *t == territory || !same_family(q.addr, addr) {
                continue;
            }
            let shared = common_bits(q.addr, addr);
            if shared >= q.len {
                // q holds the subnet's address: shorter than the match, the match wins
                // inside it; longer than the source, the subnet is too coarse to tell.
                if q.len > source_len {
                    scope = scope.max(q.len);
                }
            } else {
                // The scope must be long enough to leave q out.
                scope = scope.max(shared + 1);
            }
        }
        (territory, scope.min(bits(addr)))
    }

    fn longest_match(&self, addr: IpAddr, max_len: u8) -> Option<(Prefix, u8)> {
        self.prefixes
            .iter()
            .filter(|(p, _)| p.len <= max_len && p.contains(addr))
            .max_by_key(|(p, _)| p.len)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Territories {
        let names = vec![("eu".to_owned(), 1), ("us".to_owned(), 2), ("lab".to_owned(), 3)];
        let prefixes = [
            ("eu", "198.18.0.0/16"),
            ("us", "198.19.0.0/16"),
            ("lab", "198.18.7.0/24"),
            ("eu", "fd00:eu::/32"),
            ("us", "fd00:1::/32"),
        ];
        let prefixes: Vec<(String, String)> =
            prefixes.iter().map(|(t, p)| (t.to_string(), p.to_string())).collect();
        let (t, warnings) = Territories::build(&names, &prefixes);
        assert_eq!(warnings.len(), 1, "fd00:eu:: is not an address: {warnings:?}");
        t
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        assert_eq!(t.lookup(ip("198.18.1.1")), 1);
        assert_eq!(t.lookup(ip("198.18.7.9")), 3);
        assert_eq!(t.lookup(ip("198.19.0.1")), 2);
        assert_eq!(t.lookup(ip("192.0.2.1")), 0);
        assert_eq!(t.lookup(ip("fd00:1::5")), 2);
        assert_eq!(t.name(3), Some("lab"));
    }

    /// RFC 7871 section 7.2.1: the scope is the prefix the answer holds for.
    #[test]
    fn rfc7871_section_7_2_1_scope_covers_exactly_the_uniform_network() {
        let t = table();
        // Inside eu, away from lab: eu for the whole /16 but lab's /24 must be left
        // out, so the scope is the first bit where the address leaves 198.18.7.0/24.
        let (territory, scope) = t.lookup_subnet(ip("198.18.200.0"), 24);
        assert_eq!(territory, 1);
        assert_eq!(scope, 17, "198.18.128.0/17 holds no lab address");
        // Inside lab: /24.
        assert_eq!(t.lookup_subnet(ip("198.18.7.0"), 24), (3, 24));
        // A /16 source cannot tell lab from eu: the answer is eu's, scoped to /24 ...
        assert_eq!(t.lookup_subnet(ip("198.18.0.0"), 16).0, 1);
        assert!(t.lookup_subnet(ip("198.18.0.0"), 16).1 > 16);
        // Outside every territory: the default, scoped to leave every prefix out.
        let (territory, scope) = t.lookup_subnet(ip("10.1.2.0"), 24);
        assert_eq!((territory, scope), (0, 1), "10/1 holds no territory prefix");
        // No territories at all: scope 0.
        assert_eq!(Territories::default().lookup_subnet(ip("10.1.2.0"), 24), (0, 0));
        // Source prefix 0 (privacy): the default for everyone.
        assert_eq!(t.lookup_subnet(ip("0.0.0.0"), 0), (0, 0));
    }
}
