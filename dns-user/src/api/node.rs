//! What the API tells about the service itself: this node's health checks, the fleet
//! (each node's fast-path fill, hit ratio and change-log position, as reported), and
//! the nouns with no zone: territories, TSIG keys (never their secrets), API tokens
//! (never their secrets), the audit log. Global tokens only.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    ApiState,
    caller::Caller,
    extract::{Json, Path, Query},
    page::{Page, PageQuery},
    problem::Problem,
};
use crate::{
    model::{
        Invalid,
        key::{KeyScope, NamePattern, Operation, Secret, TsigAlgorithm},
        prefix::Prefix,
        token::Access,
    },
    protocol::parse_user_name,
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

#[utoipa::path(get, path = "/v1/territories/{name}", tag = "node", params(("name" = String, Path)),
    responses((status = 200, body = TerritoryInfo)))]
pub async fn show_territory(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<TerritoryInfo>, Problem> {
    caller.require_global(Access::Read)?;
    Ok(Json(state.db.show_territory(&name).await?))
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

/// A territory's networks, e.g. `["198.18.64.0/18", "fd00:64::/32"]`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerritoryBody {
    pub name: String,
    pub prefixes: Vec<String>,
}

fn prefixes(texts: &[String]) -> Result<Vec<Prefix>, Problem> {
    Ok(texts.iter().map(|p| p.parse()).collect::<Result<Vec<Prefix>, _>>()?)
}

#[utoipa::path(post, path = "/v1/territories", tag = "node", request_body = TerritoryBody,
    responses((status = 201, body = TerritoryInfo)))]
pub async fn add_territory(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<TerritoryBody>,
) -> Result<(StatusCode, Json<TerritoryInfo>), Problem> {
    caller.require_global(Access::Write)?;
    state.db.add_territory(&body.name, &prefixes(&body.prefixes)?).await?;
    Ok((StatusCode::CREATED, Json(state.db.show_territory(&body.name).await?)))
}

/// Changes to a territory's networks: `replace` drops them all first.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerritoryChange {
    #[serde(default)]
    pub replace: bool,
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[utoipa::path(patch, path = "/v1/territories/{name}", tag = "node", params(("name" = String, Path)),
    request_body = TerritoryChange, responses((status = 200, body = TerritoryInfo)))]
pub async fn change_territory(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(change): Json<TerritoryChange>,
) -> Result<Json<TerritoryInfo>, Problem> {
    caller.require_global(Access::Write)?;
    state
        .db
        .set_territory(&name, change.replace, &prefixes(&change.add)?, &prefixes(&change.remove)?)
        .await?;
    Ok(Json(state.db.show_territory(&name).await?))
}

#[utoipa::path(delete, path = "/v1/territories/{name}", tag = "node", params(("name" = String, Path)),
    responses((status = 204, description = "Removed")))]
pub async fn remove_territory(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_global(Access::Write)?;
    state.db.remove_territory(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A TSIG key to make: a new random secret, answered once.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// Default hmac-sha256.
    pub algorithm: Option<TsigAlgorithm>,
    /// Zones it may touch (default: every zone).
    #[serde(default)]
    pub zones: Vec<String>,
    /// Names it may touch: `_acme-challenge.*`, `*.example.org` or a name (default: all).
    #[serde(default)]
    pub names: Vec<String>,
    /// What it may do (default: update, transfer and query).
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Its secret in base64, if it has one already (default: a new random one).
    pub secret: Option<String>,
}

/// A key just made, with its secret (base64), shown this once.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct MadeKey {
    #[serde(flatten)]
    pub key: KeyRow,
    pub secret: String,
}

#[utoipa::path(post, path = "/v1/keys", tag = "node", request_body = NewKey,
    responses((status = 201, body = MadeKey)))]
pub async fn add_key(
    State(state): State<ApiState>,
    caller: Caller,
    Json(new): Json<NewKey>,
) -> Result<(StatusCode, Json<MadeKey>), Problem> {
    caller.require_global(Access::Write)?;
    let algorithm = new.algorithm.unwrap_or(TsigAlgorithm::HmacSha256);
    let zones = new
        .zones
        .iter()
        .map(|z| parse_user_name(z).map_err(|e| Problem::from(Invalid(format!("key zone {z:?}: {e}")))))
        .collect::<Result<Vec<_>, _>>()?;
    let names = new.names.iter().map(|n| n.parse()).collect::<Result<Vec<NamePattern>, _>>()?;
    let operations = if new.operations.is_empty() { Operation::ALL.to_vec() } else { new.operations };
    let secret = match &new.secret {
        Some(text) => Secret::from_base64(text)?,
        None => Secret::generate(algorithm.output_len()),
    };
    let key = state.db.add_key(&new.name, algorithm, &secret, &KeyScope { zones, names, operations }).await?;
    Ok((StatusCode::CREATED, Json(MadeKey { key, secret: secret.to_base64() })))
}

#[utoipa::path(delete, path = "/v1/keys/{name}", tag = "node", params(("name" = String, Path)),
    responses((status = 204, description = "Removed: requests signed with it get BADKEY")))]
pub async fn remove_key(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_global(Access::Write)?;
    state.db.remove_key(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
