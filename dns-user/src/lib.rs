//! instadns: an authoritative DNS server for multi-tenant platforms whose hot answers
//! are served by an XDP program.
//!
//! The planes, lowest first; each may import only those below it:
//! - [`protocol`]: DNS on the wire (parse, assemble, encode answers). No I/O.
//! - [`model`]: typed settings, name patterns, networks, validation.
//! - [`store`]: SQLite and PostgreSQL behind one interface, the change log.
//! - [`resolution`]: the catalog and the resolver (answers from the store's data).
//! - [`fastpath`]: the owner of the BPF maps (loader, pins, kernel maps, slots).
//! - [`engine`]: the query core and the answer cache it installs into the fast path.
//! - [`frontend`]: UDP and TCP sockets.
//! - [`control`]: the change-log follower, health probes, TTL moves.
//! - [`api`]: the HTTP management API (through the store, like the CLI).
//!
//! The daemon (`serve`) and the commands live in the `instadns` binary (`src/main.rs`,
//! `src/daemon`, `src/commands`), on top of all of these.

pub mod api;
pub mod control;
pub mod engine;
pub mod fastpath;
pub mod frontend;
pub mod model;
pub mod protocol;
pub mod resolution;
pub mod store;
