//! Probes for orchestrators (Kubernetes, Docker, load balancers), without a token and without
//! detail: `GET /livez` (the process answers) and `GET /readyz` (the database is reachable, every
//! migration is applied, and the service is not stopping). `/api/health` has the detail.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;
use tgwatch_store as storage;

/// A probe's answer, without detail.
#[derive(Serialize, ToSchema)]
pub struct Probe {
    /// `alive`; `ready` or `not_ready`.
    status: &'static str,
}

/// The process answers.
#[utoipa::path(
    operation_id = "livez",
    tag = "operations",
    security(()),
    responses((status = 200, body = Probe))
)]
#[get("/livez")]
#[tracing::instrument(name = "probes.livez", skip_all)]
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(Probe { status: "alive" })
}

/// The database is reachable, every migration is applied, and the service is not stopping.
#[utoipa::path(
    operation_id = "readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Probe),
        (status = 503, description = "Not ready", body = Probe),
    )
)]
#[get("/readyz")]
#[tracing::instrument(name = "probes.readyz", skip_all)]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ready = !state.stopping.load(Ordering::Relaxed)
        && storage::ping(&state.db).await.is_ok()
        && storage::migrations_applied(&state.db)
            .await
            .unwrap_or(false);
    if ready {
        HttpResponse::Ok().json(Probe { status: "ready" })
    } else {
        HttpResponse::ServiceUnavailable().json(Probe {
            status: "not_ready",
        })
    }
}
