//! `GET /api/health`: is the database reachable, are the actors running, how are the accounts
//! and channels, and how did the last edit of the configuration file go.
//!
//! `status` is `ok`; `degraded` with HTTP 200 when the service serves but something needs the
//! operator (a refused edit of the configuration file); `degraded` with HTTP 503 when the
//! database or the fleet is down. `reasons` says why.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::{
    actors::messages::{AccountLinks, Snapshot},
    state::AppState,
};
use tgwatch_store as storage;

/// The health report. The parts about actors, accounts, channels and the configuration are
/// objects (or `{"error": ...}` when they could not be read).
#[derive(Serialize, ToSchema)]
pub struct HealthView {
    /// `ok` or `degraded`.
    status: &'static str,
    /// Why it is degraded.
    reasons: Vec<String>,
    uptime_seconds: u64,
    /// `ok`, or the database's error.
    database: String,
    /// The supervision tree's counts.
    #[schema(value_type = Object)]
    actors: serde_json::Value,
    /// Accounts per status.
    #[schema(value_type = Object)]
    accounts: serde_json::Value,
    /// Each account: `id`, `label`, `status`, `status_reason`, `last_active`, `running`,
    /// `logged_in`, `connected`.
    #[schema(value_type = Object)]
    account_states: serde_json::Value,
    /// Channel activity.
    #[schema(value_type = Object)]
    channels: serde_json::Value,
    /// The configuration file: its path, when it was last applied, the last refused edit.
    #[schema(value_type = Object)]
    config: serde_json::Value,
    service_time: DateTime<Utc>,
}

/// Is the service healthy: the database, the actors, the accounts and channels, the
/// configuration file. Open (no token).
#[utoipa::path(
    operation_id = "health",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Serving (`status` is `ok`, or `degraded` when something needs the operator)", body = HealthView),
        (status = 503, description = "The database or the fleet is down", body = HealthView),
    )
)]
#[get("/api/health")]
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
    if let Some(rejected) = &config.last_error {
        reasons.push(format!(
            "the last edit of the configuration file was refused: {}",
            rejected.text
        ));
    }
    let body = HealthView {
        status: if reasons.is_empty() { "ok" } else { "degraded" },
        reasons,
        uptime_seconds: state.started.elapsed().as_secs(),
        database: match &database {
            Ok(()) => "ok".to_owned(),
            Err(error) => error.to_string(),
        },
        actors: match &fleet {
            Ok(snapshot) => json!(snapshot),
            Err(error) => json!({ "error": error.to_string() }),
        },
        accounts: match accounts {
            Ok(counts) => json!(counts),
            Err(error) => json!({ "error": error.to_string() }),
        },
        account_states: match account_rows {
            Ok(rows) => json!(
                rows.into_iter()
                    .map(|row| {
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
                        })
                    })
                    .collect::<Vec<_>>()
            ),
            Err(error) => json!({ "error": error.to_string() }),
        },
        channels: match channels {
            Ok(channels) => json!(channels),
            Err(error) => json!({ "error": error.to_string() }),
        },
        config: json!(config),
        service_time: state.clock.now(),
    };
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
