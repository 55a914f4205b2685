//! The sources of answers at a name, in the order the resolver asks them.

mod acme;
pub mod additional;
pub mod delegation;
mod domains;
pub mod existence;
pub mod records;
mod rules;
mod tombstones;
mod wildcard;
