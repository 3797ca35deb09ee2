//! `GET /api/health`: is the database reachable, are the actors running, how are the accounts
//! and channels, and how did the last edit of the configuration file go.
//!
//! `status` is `ok`; `degraded` with HTTP 200 when the service serves but something needs the
//! operator (a refused edit of the configuration file, an account whose status pushes go to
//! another client); `degraded` with HTTP 503 when the database or the fleet is down. `reasons`
//! says why.

use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use tgwatch_core::{assignment::AccountStatus, presence::pushes::PushState};
use uuid::Uuid;

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
    /// Each account (empty when the accounts could not be read: `database` says why).
    account_states: Vec<AccountState>,
    /// Each channel with the time of its last event (empty when they could not be read).
    channels: Vec<storage::gauges::ChannelActivity>,
    /// The configuration file: its path, when it was last applied, the last refused edit. With
    /// the admin token only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    config: Option<serde_json::Value>,
    service_time: DateTime<Utc>,
}

/// One account in the health report.
#[derive(Serialize, ToSchema)]
pub struct AccountState {
    id: Uuid,
    /// With the admin token only, like `status_reason`.
    label: Option<String>,
    status: AccountStatus,
    status_reason: Option<String>,
    last_active: Option<DateTime<Utc>>,
    /// Working for the fleet: an account that is not logged in (or banned, or deactivated)
    /// keeps an idle actor, which does not count.
    running: bool,
    logged_in: bool,
    /// Whether its actor holds a connection; null when it did not answer in time (busy in a
    /// call).
    connected: Option<bool>,
    /// `unknown` until a change of someone it watches was pushed; `stopped` when polls keep
    /// finding changes no push reported (another client on the same session takes them).
    pushes: Option<PushState>,
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
#[tracing::instrument(name = "health.health", skip_all)]
pub async fn health(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let admin = super::auth::bears_admin_token(&request, &state);
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
    // Each reason as anyone may read it, and with its detail for the admin.
    let mut reasons: Vec<(&str, String)> = Vec::new();
    if let Err(error) = &database {
        reasons.push(("database unreachable", format!("database: {error}")));
    }
    if let Err(error) = &fleet {
        reasons.push(("the fleet does not answer", format!("fleet: {error}")));
    }
    if let Err(error) = &account_rows {
        reasons.push(("accounts unreadable", format!("accounts: {error}")));
    }
    if let Err(error) = &channels {
        reasons.push(("channels unreadable", format!("channels: {error}")));
    }
    if let Ok(rows) = &account_rows {
        for row in rows {
            let pushes = links.get(&row.id).and_then(|link| link.pushes);
            if let Some(reason) = pushes.and_then(|pushes| pushes.reason()) {
                reasons.push((
                    "an account's status pushes go to another client",
                    format!("account {}: {reason}", row.label),
                ));
            }
        }
    }
    if let Some(rejected) = &config.last_error {
        reasons.push((
            "the last edit of the configuration file was refused",
            format!(
                "the last edit of the configuration file was refused: {}",
                rejected.text
            ),
        ));
    }
    let reasons = reasons
        .into_iter()
        .map(|(open, detail)| if admin { detail } else { open.to_owned() })
        .collect::<Vec<_>>();
    let body = HealthView {
        status: if reasons.is_empty() { "ok" } else { "degraded" },
        reasons,
        uptime_seconds: state.started.elapsed().as_secs(),
        database: match &database {
            Ok(()) => "ok".to_owned(),
            Err(error) if admin => error.to_string(),
            Err(_) => "unreachable".to_owned(),
        },
        actors: match &fleet {
            Ok(snapshot) => json!(snapshot),
            Err(error) => json!({ "error": error.to_string() }),
        },
        accounts: match accounts {
            Ok(counts) => json!(counts),
            Err(error) => json!({ "error": error.to_string() }),
        },
        account_states: account_rows
            .unwrap_or_default()
            .into_iter()
            .map(|row| {
                let link = links.get(&row.id);
                AccountState {
                    running: link.is_some_and(|link| link.running) && row.status.is_usable(),
                    connected: link.and_then(|link| link.connected),
                    pushes: link.and_then(|link| link.pushes),
                    id: row.id,
                    label: admin.then_some(row.label),
                    status: row.status,
                    status_reason: row.status_reason.filter(|_| admin),
                    last_active: row.last_active,
                    logged_in: row.is_authorized,
                }
            })
            .collect(),
        channels: channels.unwrap_or_default(),
        config: admin.then(|| json!(config)),
        service_time: state.clock.now(),
    };
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
