//! What the API tells about the service itself: this node's health checks, the fleet
//! (each node's fast-path fill, hit ratio and change-log position, as reported), and
//! the nouns with no zone: territories, TSIG keys (never their secrets), API tokens
//! (never their secrets), the audit log. Global tokens only.

use axum::extract::State;
use serde::Serialize;

use super::{
    ApiState,
    caller::Caller,
    extract::{Json, Query},
    page::{Page, PageQuery},
    problem::Problem,
};
use crate::{
    model::token::Access,
    store::{audit::AuditRow, keys::KeyRow, nodes::NodeRow, territories::TerritoryInfo, tokens::TokenRow},
};

/// A health-checked address as this node sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct HealthTarget {
    /// ADDRESS:PORT probed.
    pub target: String,
    /// `tcp`, or `http PATH STATUS [host HOST]`.
    pub probe: String,
    pub up: bool,
    /// Unix time of the last state change (or of the first probe).
    pub since: i64,
    pub probes: u64,
    pub failures: u64,
    /// The last probe's result.
    pub last: String,
    /// The clusters whose answers depend on it.
    pub clusters: Vec<String>,
}

#[utoipa::path(get, path = "/v1/health", tag = "node",
    responses((status = 200, description = "This node's health-checked addresses", body = Vec<HealthTarget>)))]
pub async fn health(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<Json<Vec<HealthTarget>>, Problem> {
    caller.require_global(Access::Read)?;
    let Some(health) = &state.health else { return Ok(Json(Vec::new())) };
    let targets = health
        .snapshot()
        .into_iter()
        .map(|(t, s)| HealthTarget {
            target: t.addr.to_string(),
            probe: t.probe.to_string(),
            up: s.up,
            since: s.since.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
            probes: s.probes,
            failures: s.failures,
            last: s.last,
            clusters: s.clusters,
        })
        .collect();
    Ok(Json(targets))
}

#[utoipa::path(get, path = "/v1/fleet", tag = "node", params(PageQuery),
    responses((status = 200, description = "The nodes following this database, as each last reported", body = Page<NodeRow>)))]
pub async fn fleet(
    State(state): State<ApiState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<NodeRow>>, Problem> {
    caller.require_global(Access::Read)?;
    Ok(Json(Page::of(state.db.nodes().await?, &page, |n| n.name.clone())?))
}

#[utoipa::path(get, path = "/v1/territories", tag = "node", params(PageQuery),
    responses((status = 200, body = Page<TerritoryInfo>)))]
pub async fn territories(
    State(state): State<ApiState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<TerritoryInfo>>, Problem> {
    caller.require_global(Access::Read)?;
    Ok(Json(Page::of(state.db.list_territories().await?, &page, |t| t.name.clone())?))
}

#[utoipa::path(get, path = "/v1/keys", tag = "node", params(PageQuery),
    responses((status = 200, description = "TSIG keys, without their secrets", body = Page<KeyRow>)))]
pub async fn keys(
    State(state): State<ApiState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<KeyRow>>, Problem> {
    caller.require_global(Access::Read)?;
    Ok(Json(Page::of(state.db.list_keys().await?, &page, |k| k.name.clone())?))
}

#[utoipa::path(get, path = "/v1/tokens", tag = "node", params(PageQuery),
    responses((status = 200, description = "API tokens, without their secrets", body = Page<TokenRow>)))]
pub async fn tokens(
    State(state): State<ApiState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<TokenRow>>, Problem> {
    caller.require_global(Access::Read)?;
    Ok(Json(Page::of(state.db.list_api_tokens().await?, &page, |t| t.name.clone())?))
}

#[utoipa::path(get, path = "/v1/audit", tag = "node", params(PageQuery),
    responses((status = 200, description = "The API's writes, oldest first", body = Page<AuditRow>)))]
pub async fn audit(
    State(state): State<ApiState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<AuditRow>>, Problem> {
    caller.require_global(Access::Read)?;
    let limit = page.limit()?;
    let rows = state.db.list_audit(page.after_id()?, limit as i64 + 1).await?;
    Ok(Json(Page::fetched(rows, limit, |r| r.id.to_string())))
}
