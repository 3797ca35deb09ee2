//! `GET /metrics`: Prometheus text format (see README, "Metrics"). Open like `/api/health`
//! unless `http.metrics_public = false`, which asks for the admin token.

use actix_web::{HttpRequest, HttpResponse, ResponseError, get, http::StatusCode, web};

use super::error::ApiError;
use crate::{
    actors::messages::Snapshot,
    metrics::{Gauges, render},
    state::AppState,
};
use tgwatch_core::constant_time;
use tgwatch_store as storage;

/// The content type of the text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus metrics (text format 0.0.4). Open unless `http.metrics_public = false`.
#[utoipa::path(
    operation_id = "metrics",
    tag = "operations",
    security((), ("admin_token" = [])),
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain", body = String),
        (status = 401, description = "`http.metrics_public` is false and the token is missing or wrong", body = super::error::ErrorBody),
    )
)]
#[get("/metrics")]
#[tracing::instrument(name = "metrics.metrics", skip_all)]
pub async fn metrics(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    if !state.metrics_public && !bearer_matches(&request, &state) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <token>` (http.metrics_public is false)",
        )
        .error_response();
    }
    let accounts = storage::accounts::count_by_status(&state.db).await;
    let channels = storage::gauges::channels_by_status(&state.db).await;
    if let Err(error) = &channels {
        tracing::warn!(%error, "cannot count channels for /metrics");
    }
    let fleet = state.supervisor.send(Snapshot).await.ok();
    let gauges = Gauges {
        database_up: accounts.is_ok(),
        accounts_by_status: accounts.ok(),
        channels_by_status: channels.unwrap_or_default(),
        accounts_running: fleet.map(|f| f.accounts_running),
        targets_running: fleet.map(|f| f.targets_running),
    };
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(render(&state.metrics.families(&gauges)))
}

fn bearer_matches(request: &HttpRequest, state: &AppState) -> bool {
    request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|token| {
            constant_time::eq(token.as_bytes(), state.admin_token.expose().as_bytes())
        })
}
