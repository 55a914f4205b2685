//! `/v1/domains` and `/v1/acme`: customers' hostnames and DNS-01 challenge answers,
//! each in the zone it lies in (a zone's token may touch them).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use serde::Deserialize;

use super::{
    ApiState,
    caller::Caller,
    extract::{Json, Path, Query},
    page::{Page, PageQuery},
    problem::Problem,
    zones::Removed,
};
use crate::{
    model::{AcmeKind, names, time::unix_now, token::Access},
    store::{AcmeChallenge, DomainRow, StoreError, zones::closest_zone},
};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DomainFilter {
    /// Only the domains of this instance.
    pub instance: Option<i64>,
    pub limit: Option<usize>,
    pub after: Option<String>,
}

/// Every custom domain (global tokens; a zone's token reads them one by one).
#[utoipa::path(get, path = "/v1/domains", tag = "domains", params(DomainFilter),
    responses((status = 200, description = "A page of custom domains, by hostname", body = Page<DomainRow>)))]
pub async fn list_domains(
    State(state): State<ApiState>,
    caller: Caller,
    Query(filter): Query<DomainFilter>,
) -> Result<Json<Page<DomainRow>>, Problem> {
    caller.require_global(Access::Read)?;
    let page = PageQuery { limit: filter.limit, after: filter.after };
    let limit = page.limit()?;
    let items =
        state.db.list_domains(filter.instance, page.after.as_deref().unwrap_or(""), limit as i64 + 1).await?;
    Ok(Json(Page::fetched(items, limit, |d| d.hostname.clone())))
}

#[utoipa::path(get, path = "/v1/domains/{hostname}", tag = "domains", params(("hostname" = String, Path)),
    responses((status = 200, body = DomainRow)))]
pub async fn show_domain(
    State(state): State<ApiState>,
    caller: Caller,
    Path(hostname): Path<String>,
) -> Result<Json<DomainRow>, Problem> {
    caller.require_name(&state.db, Access::Read, &hostname).await?;
    match state.db.domain(&hostname).await? {
        Some(row) => Ok(Json(row)),
        None => Err(StoreError::NotFound(format!("custom domain {hostname}")).into()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainOwner {
    /// The instance the hostname answers like.
    pub instance: i64,
}

/// Points a custom domain at an instance: adds it (201) or moves it (200). With
/// `If-None-Match: *` only adds (409 if it exists), with `If-Match: *` only moves (404
/// if it does not): `instadns domain add` and `domain set` through the API.
#[utoipa::path(put, path = "/v1/domains/{hostname}", tag = "domains",
    params(("hostname" = String, Path),
        ("If-None-Match" = Option<String>, Header, description = "`*`: add only"),
        ("If-Match" = Option<String>, Header, description = "`*`: move only")),
    request_body = DomainOwner,
    responses((status = 201, description = "Added", body = DomainRow), (status = 200, description = "Moved", body = DomainRow)))]
pub async fn put_domain(
    State(state): State<ApiState>,
    caller: Caller,
    Path(hostname): Path<String>,
    headers: HeaderMap,
    Json(owner): Json<DomainOwner>,
) -> Result<(StatusCode, Json<DomainRow>), Problem> {
    caller.require_name(&state.db, Access::Write, &hostname).await?;
    let star = |name: header::HeaderName| headers.get(name).is_some_and(|v| v.as_bytes() == b"*");
    let add = match (star(header::IF_NONE_MATCH), star(header::IF_MATCH)) {
        (true, true) => {
            return Err(Problem::bad_request("give If-None-Match: * (add) or If-Match: * (move), not both"));
        }
        (true, false) => true,
        (false, true) => false,
        (false, false) => state.db.domain(&hostname).await?.is_none(),
    };
    let status = if add {
        state.db.add_domain(&hostname, owner.instance).await?;
        StatusCode::CREATED
    } else {
        state.db.set_domain(&hostname, owner.instance).await?;
        StatusCode::OK
    };
    let row = state
        .db
        .domain(&hostname)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("custom domain {hostname}")))?;
    Ok((status, Json(row)))
}

#[utoipa::path(delete, path = "/v1/domains/{hostname}", tag = "domains", params(("hostname" = String, Path)),
    responses((status = 204, description = "Removed")))]
pub async fn remove_domain(
    State(state): State<ApiState>,
    caller: Caller,
    Path(hostname): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_name(&state.db, Access::Write, &hostname).await?;
    state.db.remove_domain(&hostname).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The challenge answers the token may read (expired TXT values included).
#[utoipa::path(get, path = "/v1/acme", tag = "acme", params(PageQuery),
    responses((status = 200, description = "A page of challenge answers, by name", body = Page<AcmeChallenge>)))]
pub async fn list_challenges(
    State(state): State<ApiState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<AcmeChallenge>>, Problem> {
    let apexes = state.db.zone_apexes().await?;
    let readable = |c: &AcmeChallenge| match names::absolute(&c.name, "name") {
        Ok(name) => {
            closest_zone(&name, &apexes).map_or(caller.0.zones.is_empty(), |z| caller.may_read_zone(z))
        }
        Err(_) => false,
    };
    let list = state.db.list_acme(None).await?.into_iter().filter(readable).collect();
    Ok(Json(Page::of(list, &page, |c| format!("{} {} {}", c.name, c.kind, c.value))?))
}

#[utoipa::path(get, path = "/v1/acme/{name}", tag = "acme",
    params(("name" = String, Path, description = "The name validated (answers at _acme-challenge.NAME)")),
    responses((status = 200, body = Vec<AcmeChallenge>)))]
pub async fn show_challenge(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<AcmeChallenge>>, Problem> {
    caller.require_name(&state.db, Access::Read, &name).await?;
    Ok(Json(state.db.list_acme(Some(&name)).await?))
}

/// A challenge answer: a TXT value, or a CNAME into a validation zone.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChallenge {
    pub txt: Option<String>,
    pub cname: Option<String>,
    /// Default 60.
    pub ttl: Option<u32>,
    /// Stop answering the TXT value after this many seconds.
    pub expires_in: Option<u32>,
}

/// Adds a challenge answer for NAME; answers with all of NAME's.
#[utoipa::path(post, path = "/v1/acme/{name}", tag = "acme",
    params(("name" = String, Path, description = "The name validated (answers at _acme-challenge.NAME)")),
    request_body = NewChallenge, responses((status = 201, body = Vec<AcmeChallenge>)))]
pub async fn add_challenge(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(new): Json<NewChallenge>,
) -> Result<(StatusCode, Json<Vec<AcmeChallenge>>), Problem> {
    caller.require_name(&state.db, Access::Write, &name).await?;
    let (kind, value) = match (new.txt, new.cname) {
        (Some(txt), None) => (AcmeKind::Txt, txt),
        (None, Some(cname)) => (AcmeKind::Cname, cname),
        _ => return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "give one of txt and cname")),
    };
    let challenge = AcmeChallenge {
        name: name.clone(),
        kind,
        value,
        ttl: new.ttl.unwrap_or(60),
        expires_at: new.expires_in.map(|s| unix_now() + i64::from(s)),
    };
    state.db.set_acme(&challenge).await?;
    Ok((StatusCode::CREATED, Json(state.db.list_acme(Some(&name)).await?)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChallengeSelector {
    /// Only this TXT value (all of NAME's answers otherwise).
    pub txt: Option<String>,
}

#[utoipa::path(delete, path = "/v1/acme/{name}", tag = "acme",
    params(("name" = String, Path, description = "The name validated"), ChallengeSelector),
    responses((status = 200, description = "How many answers were removed", body = Removed)))]
pub async fn remove_challenge(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Query(selector): Query<ChallengeSelector>,
) -> Result<Json<Removed>, Problem> {
    caller.require_name(&state.db, Access::Write, &name).await?;
    Ok(Json(Removed { removed: state.db.clear_acme(&name, selector.txt.as_deref()).await? }))
}
