//! `/v1/clusters` and `/v1/instances`: where each tenant instance runs, and moves.
//! Both belong to no zone: global tokens only.

use axum::{extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    ApiState,
    caller::Caller,
    extract::{Json, Path, Query},
    page::{Page, PageQuery},
    problem::Problem,
};
use crate::{
    model::{
        AddressOrder, AddressSpec, Fallback, HealthCheck, Invalid, Pick,
        cluster::check_defaults::{EXPECT_STATUS, FALL, INTERVAL_MS, RISE, TIMEOUT_MS},
        token::Access,
    },
    store::{ClusterInfo, ClusterUpdate, InstanceInfo, Tombstone, instances::InstanceListed},
};

#[utoipa::path(get, path = "/v1/clusters", tag = "clusters", params(PageQuery),
    responses((status = 200, description = "A page of clusters, by name", body = Page<ClusterInfo>)))]
pub async fn list_clusters(
    State(state): State<ApiState>,
    caller: Caller,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<ClusterInfo>>, Problem> {
    caller.require_global(Access::Read)?;
    Ok(Json(Page::of(state.db.list_clusters().await?, &page, |c| c.cluster.name.clone())?))
}

#[utoipa::path(get, path = "/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)),
    responses((status = 200, body = ClusterInfo)))]
pub async fn show_cluster(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ClusterInfo>, Problem> {
    caller.require_global(Access::Read)?;
    Ok(Json(state.db.show_cluster(&name).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstanceFilter {
    /// Only the instances of this cluster.
    pub cluster: Option<String>,
    pub limit: Option<usize>,
    pub after: Option<String>,
}

#[utoipa::path(get, path = "/v1/instances", tag = "instances", params(InstanceFilter),
    responses((status = 200, description = "A page of instances, by id", body = Page<InstanceListed>)))]
pub async fn list_instances(
    State(state): State<ApiState>,
    caller: Caller,
    Query(filter): Query<InstanceFilter>,
) -> Result<Json<Page<InstanceListed>>, Problem> {
    caller.require_global(Access::Read)?;
    let page = PageQuery { limit: filter.limit, after: filter.after };
    let limit = page.limit()?;
    let items =
        state.db.list_instances(filter.cluster.as_deref(), page.after_id()?, limit as i64 + 1).await?;
    Ok(Json(Page::fetched(items, limit, |i| i.instance.id.to_string())))
}

#[utoipa::path(get, path = "/v1/instances/{id}", tag = "instances", params(("id" = i64, Path)),
    responses((status = 200, body = InstanceInfo)))]
pub async fn show_instance(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<Json<InstanceInfo>, Problem> {
    caller.require_global(Access::Read)?;
    Ok(Json(state.db.show_instance(id).await?))
}

/// An instance to add: its id (the platform's), its cluster, and optionally its
/// name and owner (for `{name}.{owner}` rules) and TTL.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstance {
    pub id: i64,
    pub cluster: String,
    pub name: Option<String>,
    pub owner: Option<String>,
    pub ttl: Option<u32>,
}

#[utoipa::path(post, path = "/v1/instances", tag = "instances", request_body = NewInstance,
    responses((status = 201, body = InstanceInfo)))]
pub async fn add_instance(
    State(state): State<ApiState>,
    caller: Caller,
    Json(new): Json<NewInstance>,
) -> Result<(StatusCode, Json<InstanceInfo>), Problem> {
    caller.require_global(Access::Write)?;
    state.db.add_instance(new.id, &new.cluster, new.name.as_deref(), new.owner.as_deref(), new.ttl).await?;
    Ok((StatusCode::CREATED, Json(state.db.show_instance(new.id).await?)))
}

/// What changes on an instance: its name and owner (together), or its TTL; what is
/// absent stays.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceChange {
    /// New instance name, for `{name}.{owner}` names (with `owner`).
    pub name: Option<String>,
    pub owner: Option<String>,
    /// Remove the name and owner (`{name}.{owner}` names stop answering).
    #[serde(default)]
    pub clear_names: bool,
    /// New TTL of the instance's answers.
    pub ttl: Option<u32>,
    /// Back to the rules' TTLs.
    #[serde(default)]
    pub clear_ttl: bool,
}

impl InstanceChange {
    fn check(&self) -> Result<(), Problem> {
        let refuse = |what: &str| Err(Problem::from(Invalid(what.into())));
        if self.name.is_some() != self.owner.is_some() {
            return refuse("give name and owner together");
        }
        if self.name.is_some() && self.clear_names {
            return refuse("give name and owner, or clear_names, not both");
        }
        if self.ttl.is_some() && self.clear_ttl {
            return refuse("give ttl or clear_ttl, not both");
        }
        if self.name.is_none() && !self.clear_names && self.ttl.is_none() && !self.clear_ttl {
            return refuse("nothing to change: give name and owner, clear_names, ttl or clear_ttl");
        }
        Ok(())
    }
}

#[utoipa::path(patch, path = "/v1/instances/{id}", tag = "instances", params(("id" = i64, Path)),
    request_body = InstanceChange, responses((status = 200, body = InstanceInfo)))]
pub async fn change_instance(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(change): Json<InstanceChange>,
) -> Result<Json<InstanceInfo>, Problem> {
    caller.require_global(Access::Write)?;
    change.check()?;
    if change.name.is_some() || change.clear_names {
        state.db.set_instance_names(id, change.name.as_deref(), change.owner.as_deref()).await?;
    }
    if change.ttl.is_some() || change.clear_ttl {
        state.db.set_instance_ttl(id, change.ttl).await?;
    }
    Ok(Json(state.db.show_instance(id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Move {
    /// The cluster the instance moves to.
    pub cluster: String,
}

/// Moves an instance to another cluster; answers with the tombstone of the old one.
#[utoipa::path(post, path = "/v1/instances/{id}/move", tag = "instances", params(("id" = i64, Path)),
    request_body = Move, responses((status = 200, body = Tombstone)))]
pub async fn move_instance(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
    Json(to): Json<Move>,
) -> Result<Json<Tombstone>, Problem> {
    caller.require_global(Access::Write)?;
    Ok(Json(state.db.move_instance(id, &to.cluster).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RemoveInstance {
    /// Remove its custom domains with it (refused otherwise while it has any).
    #[serde(default)]
    pub force: bool,
}

#[utoipa::path(delete, path = "/v1/instances/{id}", tag = "instances", params(("id" = i64, Path), RemoveInstance),
    responses((status = 204, description = "Removed")))]
pub async fn remove_instance(
    State(state): State<ApiState>,
    caller: Caller,
    Path(id): Path<i64>,
    Query(options): Query<RemoveInstance>,
) -> Result<StatusCode, Problem> {
    caller.require_global(Access::Write)?;
    state.db.remove_instance(id, options.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A cluster's health check: `target` is `tcp:PORT` or `http:PORT/PATH`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckBody {
    pub target: String,
    /// HTTP: the Host header (default: the address).
    pub host: Option<String>,
    /// HTTP: the status expected (default 200).
    pub expect_status: Option<u16>,
    pub interval_ms: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
}

/// What a cluster starts with, or what changes; what is absent stays. Addresses in the
/// CLI's form, `IP[,weight=N][,queue=N][,territory=NAME]`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterChange {
    /// Service name to the target its names CNAME to.
    #[serde(default)]
    pub services: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub remove_services: Vec<String>,
    #[serde(default)]
    pub addresses: Vec<String>,
    #[serde(default)]
    pub remove_addresses: Vec<String>,
    pub order: Option<AddressOrder>,
    pub pick: Option<Pick>,
    pub fallback: Option<Fallback>,
    pub check: Option<CheckBody>,
    #[serde(default)]
    pub remove_check: bool,
}

impl ClusterChange {
    fn update(self) -> Result<ClusterUpdate, Problem> {
        let check = match self.check {
            None => None,
            Some(c) => Some(HealthCheck {
                target: c.target.parse()?,
                host: c.host,
                expect_status: c.expect_status.unwrap_or(EXPECT_STATUS),
                interval_ms: c.interval_ms.unwrap_or(INTERVAL_MS),
                timeout_ms: c.timeout_ms.unwrap_or(TIMEOUT_MS),
                rise: c.rise.unwrap_or(RISE),
                fall: c.fall.unwrap_or(FALL),
            }),
        };
        let remove_addresses = self
            .remove_addresses
            .iter()
            .map(|a| a.parse().map_err(|_| Problem::from(Invalid(format!("{a:?} is not an IP address")))))
            .collect::<Result<_, _>>()?;
        Ok(ClusterUpdate {
            set_services: self.services.into_iter().collect(),
            remove_services: self.remove_services,
            add_addresses: self
                .addresses
                .iter()
                .map(|a| a.parse())
                .collect::<Result<Vec<AddressSpec>, _>>()?,
            remove_addresses,
            order: self.order,
            pick: self.pick,
            fallback: self.fallback,
            check,
            remove_check: self.remove_check,
        })
    }
}

/// A cluster to add: its name and what it starts with, in one object. For the
/// document only: `add_cluster` reads the body itself.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NewCluster {
    pub name: String,
    #[serde(flatten)]
    pub with: ClusterChange,
}

#[utoipa::path(post, path = "/v1/clusters", tag = "clusters", request_body = NewCluster,
    responses((status = 201, body = ClusterInfo)))]
pub async fn add_cluster(
    State(state): State<ApiState>,
    caller: Caller,
    Json(body): Json<serde_json::Map<String, serde_json::Value>>,
) -> Result<(StatusCode, Json<ClusterInfo>), Problem> {
    caller.require_global(Access::Write)?;
    let mut body = body;
    let name = match body.remove("name") {
        Some(serde_json::Value::String(name)) => name,
        _ => return Err(Problem::from(Invalid("the cluster's \"name\" (a string) is missing".into()))),
    };
    // The rest is a ClusterChange, its unknown fields refused (serde's flatten would
    // let them through).
    let with: ClusterChange = serde_json::from_value(serde_json::Value::Object(body))
        .map_err(|e| Problem::from(Invalid(format!("the cluster's fields: {e}"))))?;
    state.db.add_cluster(&name, &with.update()?).await?;
    Ok((StatusCode::CREATED, Json(state.db.show_cluster(&name).await?)))
}

#[utoipa::path(patch, path = "/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)),
    request_body = ClusterChange, responses((status = 200, body = ClusterInfo)))]
pub async fn change_cluster(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    Json(change): Json<ClusterChange>,
) -> Result<Json<ClusterInfo>, Problem> {
    caller.require_global(Access::Write)?;
    state.db.set_cluster(&name, &change.update()?).await?;
    Ok(Json(state.db.show_cluster(&name).await?))
}

#[utoipa::path(delete, path = "/v1/clusters/{name}", tag = "clusters", params(("name" = String, Path)),
    responses((status = 204, description = "Removed")))]
pub async fn remove_cluster(
    State(state): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, Problem> {
    caller.require_global(Access::Write)?;
    state.db.remove_cluster(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
