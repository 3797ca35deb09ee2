//! Probes for orchestrators (Kubernetes, Docker, load balancers), without a token and without
//! detail: `GET /livez` (the process answers) and `GET /readyz` (the database is reachable, every
//! migration is applied, and the service is not stopping). `/api/health` has the detail.

use std::sync::atomic::Ordering;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;
use tgwatch_store as storage;

pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "alive" }))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let ready = !state.stopping.load(Ordering::Relaxed)
        && storage::ping(&state.db).await.is_ok()
        && storage::migrations_applied(&state.db)
            .await
            .unwrap_or(false);
    if ready {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({ "status": "not_ready" }))
    }
}
