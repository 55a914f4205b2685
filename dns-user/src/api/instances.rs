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
    model::token::Access,
    store::{ClusterInfo, InstanceInfo, Tombstone, instances::InstanceListed},
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
