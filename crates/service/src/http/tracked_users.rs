//! `/api/tracked-users`: who is watched, their sessions and statistics.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
    views::{SessionView, StatusCheckView, TrackedUserView},
};
use crate::{
    state::AppState,
    tracking::{TrackRequest, TrackedUserChange},
};
use tgwatch_core::config::Origin;
use tgwatch_core::presence::stats::{Statistics, Window, statistics};
use tgwatch_store::page::{Order, Page};
use tgwatch_store::{self as storage, entities::tracked_users, tracked_users::TrackedUserFilter};
use tgwatch_telegram::Username;

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(list)
        .service(create)
        .service(get)
        .service(replace)
        .service(update)
        .service(delete)
        .service(list_sessions)
        .service(stats);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TrackedUserQuery {
    username: Option<String>,
    account_id: Option<Uuid>,
    telegram_user_id: Option<i64>,
    is_active: Option<bool>,
    /// Online now: has an open online session.
    online: Option<bool>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// The tracked users, a page at a time.
#[utoipa::path(
    operation_id = "list_tracked_users",
    tag = "tracked-users",
    params(TrackedUserQuery),
    responses((status = 200, body = Page<TrackedUserView>))
)]
#[get("/tracked-users")]
#[tracing::instrument(name = "tracked_users.list", skip_all)]
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

/// By `username`, or by `telegram_user_id` (with `access_hash` when known).
#[derive(Deserialize, ToSchema)]
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

/// Starts tracking a user (a user tracked before is tracked again, keeping their history).
#[utoipa::path(
    operation_id = "create_tracked_user",
    tag = "tracked-users",
    request_body = NewTrackedUser,
    responses(
        (status = 201, body = TrackedUserView),
        (status = 409, description = "Tracked already (`details.existing`), or no account can take the user", body = ErrorBody),
        (status = 422, description = "A field is invalid, or no such user", body = ErrorBody),
    )
)]
#[post("/tracked-users")]
#[tracing::instrument(name = "tracked_users.create", skip_all)]
async fn create(
    state: web::Data<AppState>,
    body: params::Json<NewTrackedUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
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
    let tracked = track(&state, request).await?;
    Ok(HttpResponse::Created().json(TrackedUserView::from(tracked)))
}

/// Starts tracking a person (the native POST and seed 002's).
pub(super) async fn track(
    state: &AppState,
    request: TrackRequest,
) -> Result<tracked_users::Model, ApiError> {
    if request.telegram_user_id.is_some_and(|id| id <= 0) {
        return Err(ApiError::bad_request(
            "invalid_field",
            "`telegram_user_id` must be a positive number",
        ));
    }
    Ok(state.tracking().track(request, state.clock.now()).await?)
}

pub(super) async fn find(state: &AppState, id: Uuid) -> Result<tracked_users::Model, ApiError> {
    storage::tracked_users::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("tracked user", id))
}

/// A tracked user with what is known of them now.
#[derive(Serialize, ToSchema)]
struct TrackedUserDetail {
    #[serde(flatten)]
    user: TrackedUserView,
    /// The newest observation.
    last_status: Option<StatusCheckView>,
    /// The session going on, if any.
    open_session: Option<SessionView>,
}

/// One tracked user with what is known of them now: the newest observation and the open session.
#[utoipa::path(
    operation_id = "get_tracked_user",
    tag = "tracked-users",
    responses((status = 200, body = TrackedUserDetail), (status = 404, body = ErrorBody))
)]
#[get("/tracked-users/{id}")]
#[tracing::instrument(name = "tracked_users.get", skip_all, fields(tracked_user_id = %id))]
async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let tracked = find(&state, id.into_inner()).await?;
    let last_status = storage::observations::newest_of(&state.db, tracked.id).await?;
    let open_session = storage::sessions::open_of(&state.db, tracked.id).await?;
    let now = state.clock.now();
    Ok(HttpResponse::Ok().json(TrackedUserDetail {
        user: TrackedUserView::from(tracked),
        last_status: last_status.map(StatusCheckView::from),
        open_session: open_session.map(|row| SessionView::new(&row, now)),
    }))
}

/// A field left out is left as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TrackedUserPatchBody {
    notify: Option<bool>,
    /// `false` hides the person's online state from the bot, the live feed and seed 002's
    /// online-statuses list.
    visible_online: Option<bool>,
    /// Moves the user to this account.
    account_id: Option<Uuid>,
    /// The person's new username (after they renamed): resolved again through the account; a
    /// username of someone else is refused (422).
    username: Option<String>,
}

/// Applies a change to a tracked user (the native PATCH and PUT, and seed 002's).
pub(super) async fn change(
    state: &AppState,
    id: Uuid,
    change: TrackedUserChange,
) -> Result<tracked_users::Model, ApiError> {
    let existing = find(state, id).await?;
    Ok(state
        .tracking()
        .update(existing, change, state.clock.now())
        .await?)
}

impl TrackedUserPatchBody {
    fn change(self) -> Result<TrackedUserChange, ApiError> {
        Ok(TrackedUserChange {
            notify: self.notify,
            visible_online: self.visible_online,
            account_id: self.account_id,
            username: self.username.as_deref().map(Username::parse).transpose()?,
        })
    }
}

#[utoipa::path(
    operation_id = "update_tracked_user",
    tag = "tracked-users",
    request_body = TrackedUserPatchBody,
    responses(
        (status = 200, body = TrackedUserView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The account cannot take the user", body = ErrorBody),
        (status = 422, description = "No such account, or the username is someone else's", body = ErrorBody),
    )
)]
#[patch("/tracked-users/{id}")]
#[tracing::instrument(name = "tracked_users.update", skip_all, fields(tracked_user_id = %id))]
async fn update(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<TrackedUserPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let updated = change(&state, id.into_inner(), body.into_inner().change()?).await?;
    Ok(HttpResponse::Ok().json(TrackedUserView::from(updated)))
}

/// The same as PATCH (seed 002 has both).
#[utoipa::path(
    operation_id = "replace_tracked_user",
    tag = "tracked-users",
    request_body = TrackedUserPatchBody,
    responses(
        (status = 200, body = TrackedUserView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The account cannot take the user", body = ErrorBody),
        (status = 422, description = "No such account, or the username is someone else's", body = ErrorBody),
    )
)]
#[put("/tracked-users/{id}")]
async fn replace(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<TrackedUserPatchBody>,
) -> Result<HttpResponse, ApiError> {
    let updated = change(&state, id.into_inner(), body.into_inner().change()?).await?;
    Ok(HttpResponse::Ok().json(TrackedUserView::from(updated)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeleteQuery {
    /// Also delete the user's observations and sessions (kept by default).
    #[serde(default)]
    purge: bool,
}

/// Stops tracking the user.
#[utoipa::path(
    operation_id = "delete_tracked_user",
    tag = "tracked-users",
    params(DeleteQuery),
    responses((status = 204, description = "No longer tracked"), (status = 404, body = ErrorBody))
)]
#[delete("/tracked-users/{id}")]
#[tracing::instrument(name = "tracked_users.delete", skip_all, fields(tracked_user_id = %id))]
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

/// `hours=N` (the last N hours, 1 to 8760), or `from` and/or `to`, or nothing (the last 24 h).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WindowQuery {
    /// The last N hours (1 to 8760); not with `from`/`to`.
    hours: Option<i64>,
    /// RFC 3339 or a date; 24 h before `to` by default.
    from: Option<String>,
    /// RFC 3339 or a date; now by default.
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

/// The sessions of a window.
#[derive(Serialize, ToSchema)]
struct SessionsView {
    window: Window,
    sessions: Vec<SessionView>,
}

/// The user's online sessions overlapping the window (oldest first unless `order=desc`).
#[utoipa::path(
    operation_id = "list_tracked_user_sessions",
    tag = "tracked-users",
    params(WindowQuery),
    responses((status = 200, body = SessionsView), (status = 404, body = ErrorBody))
)]
#[get("/tracked-users/{id}/sessions")]
#[tracing::instrument(name = "tracked_users.list_sessions", skip_all, fields(tracked_user_id = %id))]
async fn list_sessions(
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
    Ok(HttpResponse::Ok().json(SessionsView { window, sessions }))
}

/// Online time, sessions and the hourly profile over the window (`order` does not apply).
#[utoipa::path(
    operation_id = "get_tracked_user_stats",
    tag = "tracked-users",
    params(WindowQuery),
    responses((status = 200, body = Statistics), (status = 404, body = ErrorBody))
)]
#[get("/tracked-users/{id}/stats")]
#[tracing::instrument(name = "tracked_users.stats", skip_all, fields(tracked_user_id = %id))]
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
