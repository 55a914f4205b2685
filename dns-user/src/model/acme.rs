//! ACME DNS-01 challenge answers (RFC 8555 section 8.4).

/// The label under which DNS-01 challenges are answered.
pub const ACME_LABEL: &str = "_acme-challenge";

super::setting!(
    /// What a challenge answers at `_acme-challenge.NAME`.
    AcmeKind, "challenge kind", {
        /// A TXT value (several may coexist during a renewal).
        Txt = "txt",
        /// A CNAME delegating validation to another zone.
        Cname = "cname",
    }
);
