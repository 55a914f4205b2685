//! instadns: an authoritative DNS server for multi-tenant platforms whose hot answers
//! are served by an XDP program.
//!
//! The way a query travels: the XDP program (crate dns-ebpf) answers from BPF maps or
//! passes the packet up; [`server`] receives what comes up and hands the bytes to the
//! sans-IO [`server::Handler`]; [`resolver`] answers from the [`store`]; [`answer`]
//! encodes the sections; [`fastpath`] caches the answer and installs it in the maps.

pub mod answer;
pub mod config;
pub mod fastpath;
pub mod invalidation;
pub mod notify;
pub mod resolver;
pub mod server;
pub mod steering;
pub mod store;
pub mod ttl;
pub mod wire;
