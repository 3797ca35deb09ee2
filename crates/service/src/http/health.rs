//! `GET /api/health`: is the database reachable, are the actors running, how are the accounts
//! and channels, and how did the last edit of the configuration file go.
//!
//! `status` is `ok`; `degraded` with HTTP 200 when the service serves but something needs the
//! operator (a refused edit of the configuration file, an account whose status pushes go to
//! another client); `degraded` with HTTP 503 when the database or the fleet is down. `reasons`
//! says why.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::{
    actors::messages::{AccountLinks, Snapshot},
    state::AppState,
};
use tgwatch_store as storage;

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
    let config = state.config.snapshot();
    let mut reasons = Vec::new();
    if let Err(error) = &database {
        reasons.push(format!("database: {error}"));
    }
    if let Err(error) = &fleet {
        reasons.push(format!("fleet: {error}"));
    }
    if let Ok(rows) = &account_rows {
        for row in rows {
            let pushes = links.get(&row.id).and_then(|link| link.pushes);
            if let Some(reason) = pushes.and_then(|pushes| pushes.reason()) {
                reasons.push(format!("account {}: {reason}", row.label));
            }
        }
    }
    if let Some(rejected) = &config.last_error {
        reasons.push(format!(
            "the last edit of the configuration file was refused: {}",
            rejected.text
        ));
    }
    let body = json!({
        "status": if reasons.is_empty() { "ok" } else { "degraded" },
        "reasons": reasons,
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
                    // Working for the fleet: an account that is not logged in (or banned, or
                    // deactivated) keeps an idle actor, which does not count.
                    "running": link.is_some_and(|link| link.running)
                        && row.status.is_usable(),
                    "logged_in": row.is_authorized,
                    "connected": link.and_then(|link| link.connected),
                    // `unknown` until a change of someone it watches was pushed; `stopped`
                    // when polls keep finding changes no push reported.
                    "pushes": link.and_then(|link| link.pushes),
                })
            }).collect::<Vec<_>>()),
            Err(error) => json!({ "error": error.to_string() }),
        },
        "channels": match channels {
            Ok(channels) => json!(channels),
            Err(error) => json!({ "error": error.to_string() }),
        },
        "config": config,
        "service_time": state.clock.now(),
    });
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
