//! What every request of the API passes before a handler: its body read within the
//! bound, its token authenticated, a read-only token kept to reads; and after it, a
//! write's row in the audit log (who, when, what, how it ended), refused writes too.

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{ApiState, caller::Caller, problem::Problem};
use crate::model::token::Access;

/// Largest request body: a record, an instance or a challenge is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// How long the body may take to arrive once the head has.
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn gate(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let writes = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let target = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |p| p.to_string());
    // The token first (headers only), so a refused body is audited with who sent it.
    let caller = authenticate(&state, &parts.headers).await;
    let body = match tokio::time::timeout(BODY_DEADLINE, to_bytes(body, MAX_BODY)).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(_)) => Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {MAX_BODY} bytes"),
        )),
        Err(_) => Err(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {} s", BODY_DEADLINE.as_secs()),
        )),
    };
    let (body, caller, outcome) = match (caller, body) {
        (Err(problem), body) => (body.unwrap_or_default(), None, Err(problem)),
        (Ok(caller), Err(problem)) => (Default::default(), Some(caller), Err(problem)),
        (Ok(caller), Ok(body)) if writes && !caller.0.scope().permits(Access::Write) => {
            let problem = Problem::forbidden(format!("token {} may only read", caller.name()));
            (body, Some(caller), Err(problem))
        }
        (Ok(caller), Ok(body)) => (body, Some(caller), Ok(())),
    };
    let response = match outcome {
        Err(problem) => problem.into_response(),
        Ok(()) => {
            if let Some(caller) = &caller {
                parts.extensions.insert(caller.clone());
            }
            next.run(Request::from_parts(parts.clone(), Body::from(body.clone()))).await
        }
    };
    if writes {
        let who = caller.as_ref().map_or("-", Caller::name);
        let status = response.status().as_u16();
        if let Err(e) = state.db.audit(who, parts.method.as_str(), &target, status, &body).await {
            // The write itself is done (or refused): say loudly that its record is missing.
            tracing::error!(
                "api: audit row of {} {target} by {who} (status {status}) not written: {e}",
                parts.method
            );
        }
    }
    response
}

async fn authenticate(state: &ApiState, headers: &axum::http::HeaderMap) -> Result<Caller, Problem> {
    let token = super::caller::bearer(headers)?;
    match state.db.api_token_by_secret(token).await? {
        Some(row) => Ok(Caller(row)),
        None => Err(Problem::unauthorized("unknown token (see `instadns token list`)")),
    }
}
