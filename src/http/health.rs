//! `GET /api/health`: is the database reachable, are the actors running, how are the accounts
//! and channels, and how did the last edit of the configuration file go.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::{
    actors::messages::{AccountLinks, Snapshot},
    app::AppState,
    storage,
};

pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let database = storage::ping(&state.db).await;
    let fleet = state.supervisor.send(Snapshot).await;
    let accounts = storage::accounts::count_by_status(&state.db).await;
    let account_rows = storage::accounts::all(&state.db).await;
    let links = state
        .supervisor
        .send(AccountLinks)
        .await
        .unwrap_or_default();
    let channels = storage::gauges::channel_activity(&state.db).await;
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
        "account_states": match account_rows {
            Ok(rows) => json!(rows.into_iter().map(|row| {
                let link = links.get(&row.id);
                json!({
                    "id": row.id,
                    "label": row.label,
                    "status": row.status,
                    "status_reason": row.status_reason,
                    "last_active": row.last_active,
                    "running": link.is_some_and(|link| link.running),
                    "connected": link.and_then(|link| link.connected),
                })
            }).collect::<Vec<_>>()),
            Err(error) => json!({ "error": error.to_string() }),
        },
        "channels": match channels {
            Ok(channels) => json!(channels),
            Err(error) => json!({ "error": error.to_string() }),
        },
        "config": state.config.snapshot(),
        "service_time": state.clock.now(),
    });
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
