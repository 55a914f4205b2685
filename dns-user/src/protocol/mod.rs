//! The DNS protocol: bytes in, bytes out, no I/O. Query parsing, response assembly,
//! answer encoding (the bytes the fast path copies), names and the answer key.
//!
//! May import: `dns_common`, `hickory_proto`, `ring` (TSIG). Nothing else of this crate.

pub mod answer;
pub mod key;
pub mod name;
pub mod presentation;
pub mod query;
mod record;
pub mod response;
pub mod serial;
pub mod tsig;
pub mod update;

pub use answer::{EncodeError, EncodedAnswer, RotateSpan, Sections, Steered, VariantChoice, encode};
pub use key::CacheKey;
pub use name::{
    WireName, display_wire_name, label_count, name_from_wire, name_to_wire, parse_absolute, parse_user_name,
};
pub use query::{ClientSubnet, CookieOption, Edns, Query, Rejection, parse_query};
pub use response::{Echo, error_response, response, truncated_response};
