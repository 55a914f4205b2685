//! The key of an answer: what the XDP program's name maps and the userspace answer cache
//! are both keyed by.

use std::sync::Arc;

use super::name::display_wire_name;

/// The lower-cased wire QNAME followed by QTYPE (big endian), shared so that millions of
/// entries cost their length, not the longest name's, and indexes hold them by
/// reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(Arc<[u8]>);

impl CacheKey {
    /// `lower_name` must already be lower-cased wire format.
    pub fn new(lower_name: &[u8], qtype: u16) -> Self {
        let mut bytes = Vec::with_capacity(lower_name.len() + 2);
        bytes.extend_from_slice(lower_name);
        bytes.extend_from_slice(&qtype.to_be_bytes());
        Self(bytes.into())
    }

    pub fn name(&self) -> &[u8] {
        &self.0[..self.0.len() - 2]
    }

    pub fn qtype(&self) -> u16 {
        let n = self.0.len();
        u16::from_be_bytes([self.0[n - 2], self.0[n - 1]])
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} type {}", display_wire_name(self.name()), self.qtype())
    }
}
