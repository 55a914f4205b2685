//! `/v1/zones`: zones, their static records and their name rules.

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
    model::{Pattern, RuleKind, names, rule::RuleSpec, token::Access},
    store::{NewZone, RecordRow, RuleRow, ZoneInfo, ZoneUpdate},
};

/// Refuses a token that may not `access` the zone the path names (its apex made
/// absolute and lower-case for the check). The store is then given the path's text, as
/// the CLI gives it what was typed, so that both say the same in their errors.
fn require_zone(caller: &Caller, access: Access, zone: &str) -> Result<(), Problem> {
    caller.require_zone(access, &names::absolute(zone, "zone")?)
}

/// The zones the token may read.
#[utoipa::path(get, path = "/v1/zones", tag = "zones", params(PageQuery),
    responses((status = 200, description = "A page of zones, by apex", body = Page<ZoneInfo>)))]
pub async fn list_zones(
    State(state): State<ApiState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<ZoneInfo>>, Problem> {
    let zones =
        state.db.list_zones().await?.into_iter().filter(|z| caller.may_read_zone(&z.zone.apex)).collect();
    Ok(Json(Page::of(zones, &page, |z| z.zone.apex.clone())?))
}

#[utoipa::path(get, path = "/v1/zones/{zone}", tag = "zones", params(("zone" = String, Path, description = "The apex")),
    responses((status = 200, body = ZoneInfo)))]
pub async fn show_zone(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<Json<ZoneInfo>, Problem> {
    require_zone(&caller, Access::Read, &zone)?;
    Ok(Json(state.db.show_zone(&zone).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordFilter {
    /// Only the records at this name.
    pub name: Option<String>,
    pub limit: Option<usize>,
    pub after: Option<String>,
}

#[utoipa::path(get, path = "/v1/zones/{zone}/records", tag = "zones",
    params(("zone" = String, Path, description = "The apex"), RecordFilter),
    responses((status = 200, description = "A page of static records, by name, type and age", body = Page<RecordRow>)))]
pub async fn list_records(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
    Query(filter): Query<RecordFilter>,
) -> Result<Json<Page<RecordRow>>, Problem> {
    require_zone(&caller, Access::Read, &zone)?;
    let records = state.db.list_records(&zone, filter.name.as_deref()).await?;
    let page = PageQuery { limit: filter.limit, after: filter.after };
    // The store's order (names and types have no spaces).
    Ok(Json(Page::of(records, &page, |r| format!("{} {} {:020}", r.name, r.rtype, r.id))?))
}

/// A static record to add.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    pub name: String,
    /// A, AAAA, CNAME, TXT, MX, ...
    #[serde(rename = "type")]
    pub rtype: String,
    /// The record data in zone-file form.
    pub data: String,
    /// Default: the zone's.
    pub ttl: Option<u32>,
}

/// Adds a record; answers with the records of its name and type.
#[utoipa::path(post, path = "/v1/zones/{zone}/records", tag = "zones", params(("zone" = String, Path, description = "The apex")),
    request_body = NewRecord, responses((status = 201, body = Vec<RecordRow>)))]
pub async fn add_record(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
    Json(record): Json<NewRecord>,
) -> Result<(StatusCode, Json<Vec<RecordRow>>), Problem> {
    require_zone(&caller, Access::Write, &zone)?;
    state.db.add_record(&zone, &record.name, &record.rtype, record.ttl, &record.data).await?;
    let mut at_name = state.db.list_records(&zone, Some(&record.name)).await?;
    at_name.retain(|r| r.rtype.eq_ignore_ascii_case(&record.rtype));
    Ok((StatusCode::CREATED, Json(at_name)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordSelector {
    pub name: String,
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub rtype: String,
    /// Only the record with this data (all of NAME and TYPE otherwise).
    pub data: Option<String>,
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct Removed {
    pub removed: u64,
}

#[utoipa::path(delete, path = "/v1/zones/{zone}/records", tag = "zones",
    params(("zone" = String, Path, description = "The apex"), RecordSelector),
    responses((status = 200, description = "How many records were removed", body = Removed)))]
pub async fn remove_records(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
    Query(selector): Query<RecordSelector>,
) -> Result<Json<Removed>, Problem> {
    require_zone(&caller, Access::Write, &zone)?;
    let removed =
        state.db.remove_record(&zone, &selector.name, &selector.rtype, selector.data.as_deref()).await?;
    Ok(Json(Removed { removed }))
}

#[utoipa::path(get, path = "/v1/zones/{zone}/rules", tag = "zones", params(("zone" = String, Path, description = "The apex")),
    responses((status = 200, description = "The zone's rules, in the order they are tried", body = Vec<RuleRow>)))]
pub async fn list_rules(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
) -> Result<Json<Vec<RuleRow>>, Problem> {
    require_zone(&caller, Access::Read, &zone)?;
    Ok(Json(state.db.list_rules(&zone).await?))
}

/// A name rule, e.g. `{"pattern": "{service}-{id}.apps", "kind": "service", "ttl": 300}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub pattern: String,
    pub kind: RuleKind,
    /// Default: the kind's (service 300, host and tombstone 60).
    pub ttl: Option<u32>,
}

impl NewRule {
    fn spec(&self) -> Result<RuleSpec, Problem> {
        let pattern: Pattern = self.pattern.parse()?;
        Ok(RuleSpec { pattern, kind: self.kind, ttl: self.ttl.unwrap_or(self.kind.default_ttl()) })
    }
}

#[utoipa::path(post, path = "/v1/zones/{zone}/rules", tag = "zones", params(("zone" = String, Path, description = "The apex")),
    request_body = NewRule, responses((status = 201, body = Vec<RuleRow>)))]
pub async fn add_rule(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
    Json(rule): Json<NewRule>,
) -> Result<(StatusCode, Json<Vec<RuleRow>>), Problem> {
    require_zone(&caller, Access::Write, &zone)?;
    state.db.add_rule(&zone, &rule.spec()?).await?;
    Ok((StatusCode::CREATED, Json(state.db.list_rules(&zone).await?)))
}

/// Changes the kind and TTL of the rule with the body's pattern; answers with the
/// zone's rules.
#[utoipa::path(patch, path = "/v1/zones/{zone}/rules", tag = "zones", params(("zone" = String, Path, description = "The apex")),
    request_body = NewRule, responses((status = 200, body = Vec<RuleRow>)))]
pub async fn change_rule(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
    Json(rule): Json<NewRule>,
) -> Result<Json<Vec<RuleRow>>, Problem> {
    require_zone(&caller, Access::Write, &zone)?;
    state.db.set_rule(&zone, &rule.spec()?).await?;
    Ok(Json(state.db.list_rules(&zone).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RuleSelector {
    pub pattern: String,
}

#[utoipa::path(delete, path = "/v1/zones/{zone}/rules", tag = "zones",
    params(("zone" = String, Path, description = "The apex"), RuleSelector),
    responses((status = 204, description = "Removed")))]
pub async fn remove_rule(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
    Query(selector): Query<RuleSelector>,
) -> Result<StatusCode, Problem> {
    require_zone(&caller, Access::Write, &zone)?;
    state.db.remove_rule(&zone, &selector.pattern).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A zone to add. `rules` in the CLI's form, `PATTERN=KIND[:TTL]`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewZoneBody {
    pub apex: String,
    /// Its name servers (at least one).
    pub ns: Vec<String>,
    /// SOA MNAME (default: the first name server) and RNAME (default: hostmaster.APEX).
    pub soa_mname: Option<String>,
    pub soa_rname: Option<String>,
    /// SOA minimum: the TTL of negative answers (default 60).
    pub soa_minimum: Option<u32>,
    /// TTL of the SOA and NS records and default TTL of static records (default 3600).
    pub ttl: Option<u32>,
    #[serde(default)]
    pub rules: Vec<String>,
}

/// Adds a zone (tokens for every zone only).
#[utoipa::path(post, path = "/v1/zones", tag = "zones", request_body = NewZoneBody,
    responses((status = 201, body = ZoneInfo)))]
pub async fn add_zone(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<NewZoneBody>,
) -> Result<(StatusCode, Json<ZoneInfo>), Problem> {
    caller.require_global(Access::Write)?;
    let rules = body.rules.iter().map(|r| r.parse()).collect::<Result<Vec<RuleSpec>, _>>()?;
    let zone = NewZone::new(
        &body.apex,
        body.ns,
        body.soa_mname,
        body.soa_rname,
        body.soa_minimum.unwrap_or(60),
        body.ttl.unwrap_or(3600),
        rules,
    );
    state.db.add_zone(&zone).await?;
    Ok((StatusCode::CREATED, Json(state.db.show_zone(&body.apex).await?)))
}

#[utoipa::path(patch, path = "/v1/zones/{zone}", tag = "zones", params(("zone" = String, Path, description = "The apex")),
    request_body = ZoneUpdate, responses((status = 200, body = ZoneInfo)))]
pub async fn change_zone(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
    Json(update): Json<ZoneUpdate>,
) -> Result<Json<ZoneInfo>, Problem> {
    require_zone(&caller, Access::Write, &zone)?;
    state.db.set_zone(&zone, &update).await?;
    Ok(Json(state.db.show_zone(&zone).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveZone {
    /// Remove it with what it holds: rules, records, custom domains (refused otherwise).
    #[serde(default)]
    pub force: bool,
}

#[utoipa::path(delete, path = "/v1/zones/{zone}", tag = "zones",
    params(("zone" = String, Path, description = "The apex"), RemoveZone),
    responses((status = 204, description = "Removed")))]
pub async fn remove_zone(
    State(state): State<ApiState>,
    caller: Caller,
    Path(zone): Path<String>,
    Query(options): Query<RemoveZone>,
) -> Result<StatusCode, Problem> {
    require_zone(&caller, Access::Write, &zone)?;
    state.db.remove_zone(&zone, options.force).await?;
    Ok(StatusCode::NO_CONTENT)
}
