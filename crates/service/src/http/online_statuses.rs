//! `/api/online-statuses`: the raw observations (seed 002 OnlineStatus). A POST records an
//! observation by hand; it goes through the same gap rule as a polled one. A PUT or PATCH
//! corrects one and a DELETE removes one; either folds that person's sessions again from where
//! the change falls, as a late observation does.

use actix_web::{HttpResponse, delete, get, http::StatusCode, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
    views::StatusCheckView,
};
use crate::{
    actors::messages::{Flush, FoldAgain, ManualObservation},
    state::AppState,
};
use tgwatch_core::presence::{Observation, Status, StatusKind};
use tgwatch_store::page::{Order, Page};
use tgwatch_store::{self as storage, entities::status_checks, observations::ObservationFilter};
use tgwatch_telegram::Username;

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(list)
        .service(create)
        .service(get)
        .service(replace)
        .service(update)
        .service(delete);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StatusQuery {
    tracked_user_id: Option<Uuid>,
    username: Option<String>,
    is_online: Option<bool>,
    status: Option<StatusKind>,
    /// Observed at or after: RFC 3339 (`2026-01-01T12:00:00Z`) or a date (`2026-01-01`).
    created_at_after: Option<String>,
    /// Observed at or before: RFC 3339 or a date.
    created_at_before: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// The raw observations, a page at a time.
#[utoipa::path(
    operation_id = "list_online_statuses",
    tag = "online-statuses",
    params(StatusQuery),
    responses((status = 200, body = Page<StatusCheckView>))
)]
#[get("/online-statuses")]
#[tracing::instrument(name = "online_statuses.list", skip_all)]
async fn list(
    state: web::Data<AppState>,
    query: params::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let filter = filter(
        &state,
        StatusFilter {
            tracked_user_id: query.tracked_user_id,
            username: query.username,
            is_online: query.is_online,
            status: query.status,
            created_at_after: query.created_at_after,
            created_at_before: query.created_at_before,
        },
    )
    .await?;
    let page = storage::observations::list(
        &state.db,
        filter,
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(StatusCheckView::from)))
}

/// The filters of an observations list, as the query gives them (seed 002's names).
pub(super) struct StatusFilter {
    pub(super) tracked_user_id: Option<Uuid>,
    pub(super) username: Option<String>,
    pub(super) is_online: Option<bool>,
    pub(super) status: Option<StatusKind>,
    pub(super) created_at_after: Option<String>,
    pub(super) created_at_before: Option<String>,
}

/// The store's filter for the query's: timestamps read, a username turned into its users' ids.
pub(super) async fn filter(
    state: &AppState,
    query: StatusFilter,
) -> Result<ObservationFilter, ApiError> {
    let after = params::timestamp("created_at_after", query.created_at_after.as_deref())?;
    let before = params::timestamp("created_at_before", query.created_at_before.as_deref())?;
    params::ordered("created_at_after", after, "created_at_before", before)?;
    let mut ids = query.tracked_user_id.map(|id| vec![id]);
    if let Some(username) = &query.username {
        let username = Username::parse(username)?;
        let by_name = storage::tracked_users::ids_by_username(&state.db, &username).await?;
        ids = Some(match ids {
            Some(ids) => ids.into_iter().filter(|id| by_name.contains(id)).collect(),
            None => by_name,
        });
    }
    Ok(ObservationFilter {
        tracked_user_ids: ids,
        is_online: query.is_online,
        status: query.status,
        after,
        before,
    })
}

#[utoipa::path(
    operation_id = "get_online_status",
    tag = "online-statuses",
    responses((status = 200, body = StatusCheckView), (status = 404, body = ErrorBody))
)]
#[get("/online-statuses/{id}")]
#[tracing::instrument(name = "online_statuses.get", skip_all, fields(online_status_id = %id))]
async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let row = find(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(StatusCheckView::from(row)))
}

/// Telegram opened on 2013-08-14 (00:00 UTC): nothing it reports happened before.
const TELEGRAM_LAUNCH_UNIX: i64 = 1_376_438_400;
/// How far past the service clock an observation may lie (the caller's clock may run ahead).
const FUTURE_SLACK_MINUTES: i64 = 5;
/// Telegram's `expires` of an online status is minutes after it was seen; a day is far beyond.
const MAX_EXPIRES_HOURS: i64 = 24;

/// Refuses a timestamp outside `earliest..=latest`, saying the range.
fn within(
    field: &str,
    at: DateTime<Utc>,
    earliest: (DateTime<Utc>, &str),
    latest: (DateTime<Utc>, &str),
) -> Result<(), ApiError> {
    if at < earliest.0 || at > latest.0 {
        return Err(ApiError::bad_request(
            "invalid_timestamp",
            format!(
                "`{field}` ({}) must lie between {} ({}) and {} ({})",
                at.to_rfc3339(),
                earliest.0.to_rfc3339(),
                earliest.1,
                latest.0.to_rfc3339(),
                latest.1,
            ),
        ));
    }
    Ok(())
}

/// Either `status` (with `expires_at` / `was_online_at`) or seed 002's `is_online`.
/// Timestamps are RFC 3339 (`2026-01-01T12:00:00Z`) or dates (`2026-01-01`), after Telegram's
/// launch (2013-08-14) and at most 5 minutes ahead of the service clock.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewStatus {
    pub(super) tracked_user_id: Uuid,
    pub(super) status: Option<StatusKind>,
    pub(super) is_online: Option<bool>,
    /// Now by default. Seed 002 names it `created_at`; either name is taken.
    #[serde(alias = "created_at")]
    pub(super) observed_at: Option<String>,
    /// With status online only: until when it counts as online (at most 24 h on).
    pub(super) expires_at: Option<String>,
    /// With status offline only: when the user was last online.
    pub(super) was_online_at: Option<String>,
}

impl NewStatus {
    /// `kept_since`: where the kept raw observations begin (`retention.status_checks_days`), if
    /// they are pruned. An observation before it could not be folded with its neighbours, which
    /// are gone: it is refused, so the sessions already folded from them stay as they are.
    fn observation(
        &self,
        now: DateTime<Utc>,
        kept_since: Option<DateTime<Utc>>,
    ) -> Result<Observation, ApiError> {
        let launch = (
            DateTime::from_timestamp(TELEGRAM_LAUNCH_UNIX, 0).unwrap_or_default(),
            "Telegram's launch",
        );
        let earliest = match kept_since {
            Some(kept_since) if kept_since > launch.0 => (
                kept_since,
                "retention.status_checks_days ago: older observations are pruned",
            ),
            _ => launch,
        };
        let observed_at =
            params::timestamp("observed_at", self.observed_at.as_deref())?.unwrap_or(now);
        let expires = params::timestamp("expires_at", self.expires_at.as_deref())?;
        let was_online = params::timestamp("was_online_at", self.was_online_at.as_deref())?;
        let kind = match (self.status, self.is_online) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "give `status` or `is_online`, not both",
                ));
            }
            (Some(kind), None) => kind,
            (None, Some(true)) => StatusKind::Online,
            (None, Some(false)) => StatusKind::Offline,
            (None, None) => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "give `status` (online, offline, recently, last_week, last_month, unknown) or `is_online`",
                ));
            }
        };
        if expires.is_some() && kind != StatusKind::Online {
            return Err(ApiError::bad_request(
                "invalid_body",
                "`expires_at` only goes with status online",
            ));
        }
        if was_online.is_some() && kind != StatusKind::Offline {
            return Err(ApiError::bad_request(
                "invalid_body",
                "`was_online_at` only goes with status offline",
            ));
        }
        // Each bound says what Telegram could have reported.
        within(
            "observed_at",
            observed_at,
            earliest,
            (
                now + chrono::Duration::minutes(FUTURE_SLACK_MINUTES),
                "now plus 5 minutes",
            ),
        )?;
        if let Some(expires) = expires {
            within(
                "expires_at",
                expires,
                (observed_at, "observed_at"),
                (
                    observed_at + chrono::Duration::hours(MAX_EXPIRES_HOURS),
                    "24 hours after observed_at",
                ),
            )?;
        }
        if let Some(was_online) = was_online {
            within(
                "was_online_at",
                was_online,
                launch,
                (observed_at, "observed_at"),
            )?;
        }
        Ok(Observation {
            observed_at,
            status: Status::from_parts(kind, expires, was_online, observed_at),
        })
    }
}

/// Records an observation by hand; it goes through the same gap rule as a polled one.
#[utoipa::path(
    operation_id = "create_online_status",
    tag = "online-statuses",
    request_body = NewStatus,
    responses(
        (status = 201, body = StatusCheckView),
        (status = 409, description = "The user is no longer tracked", body = ErrorBody),
        (status = 422, description = "No such tracked user", body = ErrorBody),
    )
)]
#[post("/online-statuses")]
#[tracing::instrument(name = "online_statuses.create", skip_all)]
async fn create(
    state: web::Data<AppState>,
    body: params::Json<NewStatus>,
) -> Result<HttpResponse, ApiError> {
    let row = record(&state, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(StatusCheckView::from(row)))
}

/// The oldest observation time retention keeps (`retention.status_checks_days`), if any.
fn kept_since(state: &AppState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let retention_days = state.running.borrow().retention.status_checks_days;
    crate::jobs::retention_cutoff(now, retention_days)
}

fn unavailable(error: actix::MailboxError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "actor_unavailable",
        error.to_string(),
    )
}

/// Records an observation by hand through the user's actor (the gap rule, events) and answers
/// the stored row.
pub(super) async fn record(
    state: &AppState,
    body: NewStatus,
) -> Result<status_checks::Model, ApiError> {
    let now = state.clock.now();
    let observation = body.observation(now, kept_since(state, now))?;
    let tracked = storage::tracked_users::get(&state.db, body.tracked_user_id)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_tracked_user",
                format!("tracked user {} does not exist", body.tracked_user_id),
            )
        })?;
    let id = state
        .supervisor
        .send(ManualObservation {
            tracked_user_id: tracked.id,
            observation,
        })
        .await
        .map_err(unavailable)??;
    // Written now rather than at the next flush, so the answer shows the stored row.
    state.storage.send(Flush).await.map_err(unavailable)??;
    storage::observations::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("online status", id))
}

pub(super) async fn find(state: &AppState, id: Uuid) -> Result<status_checks::Model, ApiError> {
    storage::observations::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("online status", id))
}

/// A correction of an observation: the fields given replace the stored ones. A new `status` (or
/// `is_online`) drops the old status's `expires_at` / `was_online_at` unless given again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusCorrection {
    pub(super) status: Option<StatusKind>,
    pub(super) is_online: Option<bool>,
    /// Seed 002 names it `created_at`; either name is taken.
    #[serde(alias = "created_at")]
    pub(super) observed_at: Option<String>,
    pub(super) expires_at: Option<String>,
    pub(super) was_online_at: Option<String>,
}

impl StatusCorrection {
    /// The observation as it reads after the correction, checked as a new one is (not before
    /// `kept_since`, the oldest observation retention keeps).
    fn apply(
        self,
        row: &status_checks::Model,
        now: DateTime<Utc>,
        kept_since: Option<DateTime<Utc>>,
    ) -> Result<Observation, ApiError> {
        let new_kind = self.status.is_some() || self.is_online.is_some();
        let kept = |at: Option<DateTime<Utc>>| at.filter(|_| !new_kind).map(|at| at.to_rfc3339());
        NewStatus {
            tracked_user_id: row.tracked_user_id,
            status: if new_kind {
                self.status
            } else {
                Some(row.status)
            },
            is_online: self.is_online,
            observed_at: Some(
                self.observed_at
                    .unwrap_or_else(|| row.observed_at.to_rfc3339()),
            ),
            expires_at: self.expires_at.or_else(|| kept(row.expires_at)),
            was_online_at: self.was_online_at.or_else(|| kept(row.was_online_at)),
        }
        .observation(now, kept_since)
    }
}

/// Folds the user's sessions again from `from` on, through the user's actor (see
/// [`FoldAgain`]).
async fn fold_again(
    state: &AppState,
    tracked_user_id: Uuid,
    from: Observation,
) -> Result<(), ApiError> {
    state
        .supervisor
        .send(FoldAgain {
            tracked_user_id,
            from,
        })
        .await
        .map_err(unavailable)??;
    Ok(())
}

/// Corrects an observation and folds that person's sessions again.
pub(super) async fn correct(
    state: &AppState,
    id: Uuid,
    correction: StatusCorrection,
) -> Result<status_checks::Model, ApiError> {
    let existing = find(state, id).await?;
    let before = storage::observations::to_observation(&existing)?;
    let now = state.clock.now();
    let after = correction.apply(&existing, now, kept_since(state, now))?;
    let tracked_user_id = existing.tracked_user_id;
    let row = storage::observations::correct(&state.db, existing, after).await?;
    // From the earlier of the two times: both the old and the new place change.
    fold_again(state, tracked_user_id, before.min(after)).await?;
    Ok(row)
}

/// Deletes an observation and folds that person's sessions again.
pub(super) async fn remove(state: &AppState, id: Uuid) -> Result<(), ApiError> {
    let existing = find(state, id).await?;
    let removed = storage::observations::to_observation(&existing)?;
    storage::observations::delete(&state.db, existing.id).await?;
    fold_again(state, existing.tracked_user_id, removed).await
}

/// Corrects an observation (the same fields as PATCH).
#[utoipa::path(
    operation_id = "replace_online_status",
    tag = "online-statuses",
    request_body = StatusCorrection,
    responses(
        (status = 200, body = StatusCheckView),
        (status = 404, body = ErrorBody),
    )
)]
#[put("/online-statuses/{id}")]
async fn replace(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<StatusCorrection>,
) -> Result<HttpResponse, ApiError> {
    let row = correct(&state, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(StatusCheckView::from(row)))
}

/// Corrects an observation: the person's sessions are folded again from where it was and
/// where it is now.
#[utoipa::path(
    operation_id = "update_online_status",
    tag = "online-statuses",
    request_body = StatusCorrection,
    responses(
        (status = 200, body = StatusCheckView),
        (status = 404, body = ErrorBody),
    )
)]
#[patch("/online-statuses/{id}")]
async fn update(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<StatusCorrection>,
) -> Result<HttpResponse, ApiError> {
    let row = correct(&state, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(StatusCheckView::from(row)))
}

/// Deletes an observation: the person's sessions are folded again without it.
#[utoipa::path(
    operation_id = "delete_online_status",
    tag = "online-statuses",
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody))
)]
#[delete("/online-statuses/{id}")]
async fn delete(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    remove(&state, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn observation(body: serde_json::Value) -> Result<Observation, ApiError> {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        serde_json::from_value::<NewStatus>(body)
            .unwrap()
            .observation(now, None)
    }

    #[test]
    fn timestamps_telegram_cannot_produce_are_refused_with_the_bound() {
        let user = Uuid::nil();
        for (field, body) in [
            (
                "observed_at",
                json!({"tracked_user_id": user, "is_online": true, "observed_at": "0001-01-01"}),
            ),
            (
                "observed_at",
                json!({"tracked_user_id": user, "is_online": true, "observed_at": "0000-01-01T00:00:00+23:59"}),
            ),
            (
                "observed_at",
                json!({"tracked_user_id": user, "is_online": true, "observed_at": "2013-08-13T23:59:59Z"}),
            ),
            (
                "observed_at",
                json!({"tracked_user_id": user, "is_online": true, "observed_at": "2026-12-05T12:06:00Z"}),
            ),
            (
                "expires_at",
                json!({"tracked_user_id": user, "status": "online", "observed_at": "2026-12-05T11:00:00Z", "expires_at": "9999-01-01T00:00:00Z"}),
            ),
            (
                "was_online_at",
                json!({"tracked_user_id": user, "status": "offline", "observed_at": "2026-12-05T11:00:00Z", "was_online_at": "1970-01-01T00:00:00Z"}),
            ),
        ] {
            let error = observation(body.clone()).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                error.message.starts_with(&format!("`{field}`"))
                    && error.message.contains("must lie between"),
                "{body}: {}",
                error.message
            );
        }
        assert!(
            observation(
                json!({"tracked_user_id": user, "is_online": true, "observed_at": "0001-01-01"})
            )
            .unwrap_err()
            .message
            .contains("2013-08-14T00:00:00+00:00 (Telegram's launch)")
        );
        let fine = observation(json!({
            "tracked_user_id": user,
            "status": "online",
            "observed_at": "2013-08-14T00:00:00Z",
            "expires_at": "2013-08-14T00:05:00Z",
        }))
        .unwrap();
        assert_eq!(fine.observed_at.timestamp(), TELEGRAM_LAUNCH_UNIX);
    }

    #[test]
    fn an_observation_older_than_the_kept_ones_is_refused_naming_the_retention_key() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let kept_since = Some(now - chrono::Duration::days(30));
        let at = |observed_at: &str| {
            serde_json::from_value::<NewStatus>(json!({
                "tracked_user_id": Uuid::nil(),
                "is_online": false,
                "observed_at": observed_at,
            }))
            .unwrap()
            .observation(now, kept_since)
        };
        let error = at("2026-11-05T11:59:59Z").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains("retention.status_checks_days"),
            "{}",
            error.message
        );
        assert!(at("2026-11-05T12:00:00Z").is_ok());
    }
}
