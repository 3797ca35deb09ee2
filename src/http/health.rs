//! `GET /api/health`: is the database reachable, are the actors running, how are the accounts.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::{actors::messages::Snapshot, app::AppState, storage};

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let database = storage::ping(&state.db).await;
    let fleet = state.supervisor.send(Snapshot).await;
    let accounts = storage::accounts::count_by_status(&state.db).await;
    let healthy = database.is_ok() && fleet.is_ok();
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "uptime_seconds": state.started.elapsed().as_secs(),
        "database": match &database {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.to_string(),
        },
        "actors": match &fleet {
            Ok(snapshot) => json!(snapshot),
            Err(error) => json!({ "error": error.to_string() }),
        },
        "accounts": match accounts {
            Ok(counts) => json!(counts),
            Err(error) => json!({ "error": error.to_string() }),
        },
        "service_time": state.clock.now(),
    });
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
