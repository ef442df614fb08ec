//! Liveness, readiness and metrics: unauthenticated, for load balancers and scrapers.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::AppState;

/// The process is up.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The process can serve: its database answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let backend = state.store.backend_name();
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => axum::Json(json!({"status": "ready", "database": backend})).into_response(),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "database": backend, "reason": e.to_string()})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(
                json!({"status": "unavailable", "database": backend, "reason": "database did not answer in 2 s"}),
            ),
        )
            .into_response(),
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(state.store.pool_stats(), state.store.backend_name());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
