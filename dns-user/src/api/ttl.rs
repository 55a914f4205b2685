//! `/v1/ttl`: the TTL of a cluster's instances, one instance, or one name, as
//! `instadns ttl apply` sets it (lowered ahead of a change, restored afterwards).

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiState, caller::Caller, extract::Json, problem::Problem};
use crate::{
    control::ttl::{self, Target},
    model::{Invalid, token::Access},
};

/// Whose TTL: one of `cluster`, `instance` and `name`; the new TTL, or `clear` (back to
/// the rules' defaults, instances only).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TtlChange {
    /// Every instance on this cluster.
    pub cluster: Option<String>,
    pub instance: Option<i64>,
    /// A name: its static records, or else the instance it belongs to.
    pub name: Option<String>,
    pub ttl: Option<u32>,
    #[serde(default)]
    pub clear: bool,
    /// Only say what would change.
    #[serde(default)]
    pub dry_run: bool,
}

/// What changed (or would), a line each.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct TtlApplied {
    pub lines: Vec<String>,
}

#[utoipa::path(post, path = "/v1/ttl", tag = "instances", request_body = TtlChange,
    responses((status = 200, description = "What changed, or would with dry_run", body = TtlApplied)))]
pub async fn apply_ttl(
    State(state): State<ApiState>,
    caller: Caller,
    Json(change): Json<TtlChange>,
) -> Result<Json<TtlApplied>, Problem> {
    let refuse = |what: &str| Err(Problem::from(Invalid(what.into())));
    let target = match (change.cluster, change.instance, change.name) {
        (Some(cluster), None, None) => Target::Cluster(cluster),
        (None, Some(id), None) => Target::Instance(id),
        (None, None, Some(name)) => Target::Name(name),
        _ => return refuse("give one of cluster, instance and name"),
    };
    if change.ttl.is_some() == change.clear {
        return refuse("give ttl or clear");
    }
    match &target {
        Target::Name(name) => caller.require_name(&state.db, Access::Write, name).await?,
        Target::Cluster(_) | Target::Instance(_) => caller.require_global(Access::Write)?,
    }
    let applied = ttl::apply(&state.db, &target, change.ttl, change.dry_run).await?;
    Ok(Json(TtlApplied { lines: applied.lines }))
}
