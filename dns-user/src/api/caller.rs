//! Who is asking: the bearer token of a request, looked up by its hash, and the checks
//! of its scope that every handler makes before it touches the store.

use axum::{extract::FromRequestParts, http::request::Parts};

use super::problem::Problem;
use crate::{
    model::{names, token::Access},
    store::{Database, tokens::TokenRow},
};

/// Longest bearer token looked up (ours are 52 characters).
pub const MAX_TOKEN_LEN: usize = 256;

/// The token of an authenticated request (put there by [`super::gate`]).
#[derive(Clone, Debug)]
pub struct Caller(pub TokenRow);

impl Caller {
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// For nouns no zone owns (clusters, instances, territories, keys, tokens, the fleet,
    /// the audit log): the token must cover every zone.
    pub fn require_global(&self, access: Access) -> Result<(), Problem> {
        self.require(access)?;
        if !self.0.zones.is_empty() {
            return Err(Problem::forbidden(format!(
                "token {} is limited to the zones {}: this needs a token for every zone",
                self.0.name,
                self.0.zones.join(" ")
            )));
        }
        Ok(())
    }

    /// For what lies in the zone `apex` (absolute, lower-case).
    pub fn require_zone(&self, access: Access, apex: &str) -> Result<(), Problem> {
        self.require(access)?;
        if !self.0.scope().permits_zone(access, apex) {
            return Err(Problem::forbidden(format!(
                "token {} may not touch zone {apex} (its zones: {})",
                self.0.name,
                self.0.zones.join(" ")
            )));
        }
        Ok(())
    }

    /// For a name (a custom domain, a challenge's name): the zone it lies in must be the
    /// token's. Returns the zone; a name outside every zone is for global tokens only
    /// (the store then says why it cannot be stored).
    pub async fn require_name(&self, db: &Database, access: Access, name: &str) -> Result<(), Problem> {
        names::absolute(name, "name")?;
        match db.zone_of_name(name).await? {
            Some(apex) => self.require_zone(access, &apex),
            None => self.require_global(access),
        }
    }

    pub fn may_read_zone(&self, apex: &str) -> bool {
        self.0.scope().permits_zone(Access::Read, apex)
    }

    fn require(&self, access: Access) -> Result<(), Problem> {
        if self.0.scope().permits(access) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!("token {} may only read", self.0.name)))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| Problem::unauthorized("no bearer token"))
    }
}

/// The token of an `Authorization: Bearer TOKEN` header.
pub fn bearer(headers: &axum::http::HeaderMap) -> Result<&str, Problem> {
    let value = headers.get(axum::http::header::AUTHORIZATION).ok_or_else(|| {
        Problem::unauthorized(
            "send the token as `Authorization: Bearer TOKEN` (make one with `instadns token add`)",
        )
    })?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
        .ok_or_else(|| Problem::unauthorized("the Authorization header is not `Bearer TOKEN`"))?;
    Ok(token)
}
