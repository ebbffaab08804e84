//! The HTTP API of a live run (`/api/v1`, `/healthz`).
//!
//! The server owns no state: every request goes to the run through [`RunControl`], which
//! the shell implements. The shell is the one writer to the run log; the CLI's operator
//! commands and (later) the web command center are clients of this API.
//!
//! **Architecture Invariant:** the wire types here are versioned on purpose and are not
//! the engine's types; the shell converts between the two.

pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

pub use wire::*;

/// What the API needs from a run. Implemented by the shell.
#[async_trait::async_trait]
pub trait RunControl: Send + Sync + 'static {
    async fn status(&self) -> StatusView;
    async fn act(&self, request: ActionRequest) -> Result<ActionAccepted, ApiError>;
    async fn events(&self, from_seq: u64, limit: u64) -> Result<Vec<LogEvent>, ApiError>;
}

/// An error as the client sees it. Domain refusals are mapped to HTTP status codes here,
/// at the edge, and nowhere else.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The person's roles lack the authority for this action.
    #[error("{0}")]
    Forbidden(String),
    /// The person, item, gate or trigger does not exist in the plan.
    #[error("{0}")]
    NotFound(String),
    /// The action does not fit the run's state (out of order, already done).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    /// Something failed inside golive; the message is safe to show.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
        };
        (self.status(), Json(body)).into_response()
    }
}

#[derive(serde::Deserialize)]
struct EventsQuery {
    #[serde(default)]
    from: u64,
    #[serde(default = "default_limit")]
    limit: u64,
}

fn default_limit() -> u64 {
    1000
}

/// The API routes, with `extra` (e.g. the Alertmanager webhook) merged in.
pub fn router<C: RunControl>(control: Arc<C>, extra: Router) -> Router {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/status", get(status::<C>))
        .route("/api/v1/actions", post(act::<C>))
        .route("/api/v1/events", get(events::<C>))
        .with_state(control);
    api.merge(extra)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "api": API_VERSION }))
}

async fn status<C: RunControl>(State(control): State<Arc<C>>) -> Json<StatusView> {
    Json(control.status().await)
}

async fn act<C: RunControl>(
    State(control): State<Arc<C>>,
    body: Result<Json<ActionRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ActionAccepted>, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    control.act(request).await.map(Json)
}

async fn events<C: RunControl>(
    State(control): State<Arc<C>>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Vec<LogEvent>>, ApiError> {
    control
        .events(query.from, query.limit.min(10_000))
        .await
        .map(Json)
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
