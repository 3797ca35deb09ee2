//! `/api/tracked-users`: who is watched, their sessions and statistics.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    error::ApiError,
    params,
    views::{SessionView, StatusCheckView, TrackedUserView},
};
use crate::{state::AppState, tracking::TrackRequest};
use tgwatch_core::config::Origin;
use tgwatch_core::presence::stats::{Window, statistics};
use tgwatch_store::page::Order;
use tgwatch_store::{self as storage, entities::tracked_users, tracked_users::TrackedUserFilter};
use tgwatch_telegram::Username;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/tracked-users", web::get().to(list))
        .route("/tracked-users", web::post().to(create))
        .route("/tracked-users/{id}", web::get().to(get))
        .route("/tracked-users/{id}", web::patch().to(update))
        .route("/tracked-users/{id}", web::delete().to(delete))
        .route("/tracked-users/{id}/sessions", web::get().to(sessions))
        .route("/tracked-users/{id}/stats", web::get().to(stats));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackedUserQuery {
    username: Option<String>,
    account_id: Option<Uuid>,
    telegram_user_id: Option<i64>,
    is_active: Option<bool>,
    /// Online now: has an open online session.
    online: Option<bool>,
    limit: Option<u64>,
    cursor: Option<Uuid>,
    order: Option<Order>,
}

async fn list(
    state: web::Data<AppState>,
    query: params::Query<TrackedUserQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let filter = TrackedUserFilter {
        username: query.username.as_deref().map(Username::parse).transpose()?,
        account_id: query.account_id,
        telegram_user_id: query.telegram_user_id,
        is_active: query.is_active,
        online: query.online,
    };
    let page = storage::tracked_users::list(
        &state.db,
        filter,
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(TrackedUserView::from)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTrackedUser {
    username: Option<String>,
    telegram_user_id: Option<i64>,
    access_hash: Option<i64>,
    account_id: Option<Uuid>,
    /// Left out: a user tracked before keeps their choice (false for a new one).
    notify: Option<bool>,
    /// Left out: a user tracked before keeps their choice (true for a new one).
    visible_online: Option<bool>,
}

async fn create(
    state: web::Data<AppState>,
    body: params::Json<NewTrackedUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    if body.telegram_user_id.is_some_and(|id| id <= 0) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`telegram_user_id` must be a positive number",
        ));
    }
    let request = TrackRequest {
        username: body.username.as_deref().map(Username::parse).transpose()?,
        telegram_user_id: body.telegram_user_id,
        access_hash: body.access_hash,
        account_id: body.account_id,
        notify: body.notify,
        visible_online: body.visible_online,
        // Tracked through the API: the API owns the row, and config.toml leaves it alone.
        source: Origin::Api,
    };
    let tracked = state.tracking().track(request, state.clock.now()).await?;
    Ok(HttpResponse::Created().json(TrackedUserView::from(tracked)))
}

async fn find(state: &AppState, id: Uuid) -> Result<tracked_users::Model, ApiError> {
    storage::tracked_users::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("tracked user", id))
}

/// One tracked user with what is known of them now: the newest observation and the open session.
async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let tracked = find(&state, id.into_inner()).await?;
    let last_status = storage::observations::newest_of(&state.db, tracked.id).await?;
    let open_session = storage::sessions::open_of(&state.db, tracked.id).await?;
    let now = state.clock.now();
    let mut body = json!(TrackedUserView::from(tracked));
    body["last_status"] = json!(last_status.map(StatusCheckView::from));
    body["open_session"] = json!(open_session.map(|row| SessionView::new(&row, now)));
    Ok(HttpResponse::Ok().json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackedUserPatchBody {
    notify: Option<bool>,
    visible_online: Option<bool>,
    account_id: Option<Uuid>,
}

async fn update(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<TrackedUserPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    let body = body.into_inner();
    let updated = state
        .tracking()
        .update(
            existing,
            body.notify,
            body.visible_online,
            body.account_id,
            state.clock.now(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(TrackedUserView::from(updated)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteQuery {
    #[serde(default)]
    purge: bool,
}

async fn delete(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: params::Query<DeleteQuery>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    state
        .tracking()
        .untrack(existing, query.purge, state.clock.now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowQuery {
    hours: Option<i64>,
    from: Option<String>,
    to: Option<String>,
    /// For the sessions list only.
    order: Option<Order>,
}

impl WindowQuery {
    /// `hours=N` (last N hours), or `from` and/or `to` (`to` defaults to now, `from` to 24 h
    /// before `to`), or nothing (the last 24 hours).
    fn window(&self, state: &AppState) -> Result<Window, ApiError> {
        let now = state.clock.now();
        let from = params::timestamp("from", self.from.as_deref())?;
        let to = params::timestamp("to", self.to.as_deref())?;
        match (self.hours, from, to) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::bad_request(
                "invalid_window",
                "give either `hours` or `from`/`to`, not both",
            )),
            (Some(hours), None, None) => Ok(Window::last_hours(hours, now)?),
            (None, None, None) => Ok(Window::last_hours(24, now)?),
            (None, from, to) => {
                let to = to.unwrap_or(now);
                let from = from.unwrap_or(to - chrono::Duration::hours(24));
                Ok(Window::between(from, to)?)
            }
        }
    }
}

async fn sessions(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: params::Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    let tracked = find(&state, id.into_inner()).await?;
    let window = query.window(&state)?;
    let now = state.clock.now();
    let rows = storage::sessions::overlapping(&state.db, tracked.id, window).await?;
    let sessions: Vec<SessionView> = params::in_order(rows, query.order)
        .iter()
        .map(|row| SessionView::new(row, now))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "window": window, "sessions": sessions })))
}

async fn stats(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: params::Query<WindowQuery>,
) -> Result<HttpResponse, ApiError> {
    if query.order.is_some() {
        return Err(ApiError::bad_request(
            "invalid_query",
            "`order` applies to lists; the statistics are not one",
        ));
    }
    let tracked = find(&state, id.into_inner()).await?;
    let window = query.window(&state)?;
    let rows = storage::sessions::overlapping(&state.db, tracked.id, window).await?;
    let sessions: Vec<_> = rows.iter().map(storage::sessions::from_row).collect();
    Ok(HttpResponse::Ok().json(statistics(&sessions, window, state.clock.now())))
}
