//! The HTTP management API: JSON over HTTP (axum), on its own listener (`[api] listen`,
//! off by default), TLS with rustls when given a certificate. Everything goes through
//! the store, as the CLI's commands do: a write reaches every node's answers, XDP maps
//! included, through the change log like any other change.
//!
//! - Bearer tokens (`instadns token add`), kept hashed in the database, each with an
//!   access (read, write) and optionally zones ([`caller`]).
//! - Errors as RFC 9457 problem details ([`problem`]); request bodies bounded and every
//!   write audited in the database ([`gate`]); lists in pages ([`page`]).
//! - The OpenAPI 3.1 document at `/openapi.json`, generated from the handlers and types
//!   below ([`ApiDoc`]), the one route without a token.
//!
//! May import: `store`, `model`, `protocol` (names), `resolution` (health state),
//! `frontend` (connection limits), `control` (TTL changes). The API never touches BPF maps.

pub mod caller;
pub mod extract;
pub mod gate;
pub mod instances;
pub mod listener;
pub mod names;
pub mod node;
pub mod page;
pub mod problem;
pub mod ttl;
pub mod zones;

use std::sync::Arc;

use axum::{
    Router,
    http::StatusCode,
    routing::{get, post},
};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use crate::{resolution::health::HealthState, store::Database};
use problem::Problem;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub db: Database,
    /// The daemon's health checks (None: a process without probes).
    pub health: Option<Arc<HealthState>>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "instadns management API",
        description = "Zones, records, rules, clusters, instances and moves, custom domains, ACME challenge answers, and the service's own state. Authenticate with `Authorization: Bearer TOKEN` (`instadns token add`); errors are RFC 9457 problem details."
    ),
    paths(
        zones::list_zones, zones::add_zone, zones::show_zone, zones::change_zone, zones::remove_zone, zones::list_records, zones::add_record, zones::remove_records,
        zones::list_rules, zones::add_rule, zones::change_rule, zones::remove_rule,
        instances::list_clusters, instances::add_cluster, instances::show_cluster,
        instances::change_cluster, instances::remove_cluster, instances::list_instances, instances::show_instance, instances::add_instance, instances::change_instance,
        instances::move_instance, instances::remove_instance, ttl::apply_ttl,
        names::list_domains, names::show_domain, names::put_domain, names::remove_domain,
        names::list_challenges, names::show_challenge, names::add_challenge, names::remove_challenge,
        node::health, node::fleet, node::territories, node::show_territory, node::add_territory, node::change_territory,
        node::remove_territory, node::keys, node::add_key, node::remove_key, node::tokens, node::audit,
    ),
    components(schemas(Problem)),
    modifiers(&Conventions),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// What every operation shares, said once: the bearer scheme and the problem answers.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let problem = |description: &str| {
            openapi::ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    openapi::ContentBuilder::new()
                        .schema(Some(openapi::Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for item in doc.paths.paths.values_mut() {
            let operations =
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                responses.entry("401".into()).or_insert(problem("No token, or an unknown one").into());
                responses
                    .entry("403".into())
                    .or_insert(problem("The token's scope does not allow this").into());
                responses
                    .entry("default".into())
                    .or_insert(problem("A problem: the detail says what and what to do").into());
            }
        }
    }
}

/// The API's routes: `/openapi.json` open, everything under `/v1` behind the gate.
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/v1/zones", get(zones::list_zones).post(zones::add_zone))
        .route("/v1/zones/{zone}", get(zones::show_zone).patch(zones::change_zone).delete(zones::remove_zone))
        .route(
            "/v1/zones/{zone}/records",
            get(zones::list_records).post(zones::add_record).delete(zones::remove_records),
        )
        .route(
            "/v1/zones/{zone}/rules",
            get(zones::list_rules).post(zones::add_rule).patch(zones::change_rule).delete(zones::remove_rule),
        )
        .route("/v1/clusters", get(instances::list_clusters).post(instances::add_cluster))
        .route(
            "/v1/clusters/{name}",
            get(instances::show_cluster).patch(instances::change_cluster).delete(instances::remove_cluster),
        )
        .route("/v1/instances", get(instances::list_instances).post(instances::add_instance))
        .route(
            "/v1/instances/{id}",
            get(instances::show_instance)
                .patch(instances::change_instance)
                .delete(instances::remove_instance),
        )
        .route("/v1/instances/{id}/move", post(instances::move_instance))
        .route("/v1/ttl", post(ttl::apply_ttl))
        .route("/v1/domains", get(names::list_domains))
        .route(
            "/v1/domains/{hostname}",
            get(names::show_domain).put(names::put_domain).delete(names::remove_domain),
        )
        .route("/v1/acme", get(names::list_challenges))
        .route(
            "/v1/acme/{name}",
            get(names::show_challenge).post(names::add_challenge).delete(names::remove_challenge),
        )
        .route("/v1/health", get(node::health))
        .route("/v1/fleet", get(node::fleet))
        .route("/v1/territories", get(node::territories).post(node::add_territory))
        .route(
            "/v1/territories/{name}",
            get(node::show_territory).patch(node::change_territory).delete(node::remove_territory),
        )
        .route("/v1/keys", get(node::keys).post(node::add_key))
        .route("/v1/keys/{name}", axum::routing::delete(node::remove_key))
        .route("/v1/tokens", get(node::tokens))
        .route("/v1/audit", get(node::audit))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), gate::gate));
    Router::new().route("/openapi.json", get(openapi_json)).merge(v1).fallback(not_found).with_state(state)
}

async fn openapi_json() -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(axum::http::header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("no such resource: {} (see /openapi.json)", uri.path()))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {} (see /openapi.json)", uri.path()),
    )
}
