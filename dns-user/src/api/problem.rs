//! Errors as RFC 9457 problem details (`application/problem+json`): a status, a title
//! for the kind of problem, and a detail that names what was wrong and what to do.

use axum::{
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{control::ttl::TtlError, model::Invalid, store::StoreError};

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank`: the title says it all).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response =
            (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"instadns\""),
            );
        }
        response
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::NotFound(_) => StatusCode::NOT_FOUND,
            StoreError::Conflict(_) => StatusCode::CONFLICT,
            StoreError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            StoreError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
            StoreError::Unavailable(_) | StoreError::Worker(_) => StatusCode::SERVICE_UNAVAILABLE,
            // A constraint of the schema refused the write: the request was at fault.
            StoreError::Postgres { sqlstate, .. } if sqlstate.starts_with("23") => StatusCode::CONFLICT,
            StoreError::Sqlite(_) | StoreError::Postgres { .. } | StoreError::BadUrl { .. } => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!("api: {e}");
        }
        Self::new(status, e.to_string())
    }
}

impl From<TtlError> for Problem {
    fn from(e: TtlError) -> Self {
        match e {
            TtlError::Store(e) => e.into(),
            TtlError::Invalid(what) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, what),
        }
    }
}

impl From<Invalid> for Problem {
    fn from(e: Invalid) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, e.0)
    }
}

impl From<JsonRejection> for Problem {
    fn from(e: JsonRejection) -> Self {
        // 400 bad JSON, 413 too large, 415 not JSON, 422 JSON of the wrong shape.
        Self::new(e.status(), e.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Self {
        Self::bad_request(e.body_text())
    }
}

impl From<PathRejection> for Problem {
    fn from(e: PathRejection) -> Self {
        Self::new(e.status(), e.body_text())
    }
}
