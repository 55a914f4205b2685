//! The sources of answers at a name, in the order the resolver asks them.

mod acme;
mod domains;
mod existence;
pub mod records;
mod rules;
mod tombstones;
