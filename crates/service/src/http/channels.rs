//! `/api/channels` (and `/api/channel`, as seed 001 names it): the monitored channels.

use actix_web::{HttpResponse, delete, get, http::StatusCode, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
};
use crate::{
    channels::{AddChannel, ChannelError, ChannelInput},
    state::AppState,
};
use tgwatch_core::config::Origin;
use tgwatch_core::tags;
use tgwatch_store::page::{Order, Page};
use tgwatch_store::{
    self as storage,
    channels::{AssignmentStatus, ChannelFilter, ChannelPatch, ChannelStatus},
    entities::{account_channel_assignments, channels},
};

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(list)
        .service(create)
        .service(create_by_seed_name)
        .service(get)
        .service(update)
        .service(delete)
        .service(assignments);
}

#[derive(Serialize, ToSchema)]
pub struct ChannelView {
    pub id: Uuid,
    pub telegram_channel_id: Option<i64>,
    pub username: Option<String>,
    pub title: Option<String>,
    pub about: Option<String>,
    pub member_count: Option<i32>,
    pub tags: Vec<String>,
    pub is_active: bool,
    pub status: ChannelStatus,
    pub status_reason: Option<String>,
    pub account_id: Option<Uuid>,
    /// When the watching account joined (seed 001): the first join, a rejoin or a move.
    pub date_joined: Option<DateTime<Utc>>,
    pub last_message_id: i32,
    pub last_event_at: Option<DateTime<Utc>>,
    pub source: Origin,
    /// Joined by an invite link (the link itself is not shown: it lets anyone in).
    pub by_invite: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<channels::Model> for ChannelView {
    fn from(row: channels::Model) -> ChannelView {
        ChannelView {
            id: row.id,
            telegram_channel_id: row.telegram_channel_id,
            username: row.username,
            title: row.title,
            about: row.about,
            member_count: row.member_count,
            tags: serde_json::from_str(&row.tags).unwrap_or_default(),
            is_active: row.is_active,
            status: row.status,
            status_reason: row.status_reason,
            account_id: row.account_id,
            date_joined: row.date_joined,
            last_message_id: row.last_message_id,
            last_event_at: row.last_event_at,
            source: row.source,
            by_invite: row.invite_hash.is_some(),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewChannelBody {
    /// "@name", "https://t.me/name", "https://t.me/+invitehash" or a numeric id. Seed 001 names
    /// it `channel_id`; either name is taken.
    #[schema(value_type = ChannelReference)]
    #[serde(alias = "channel_id")]
    channel: serde_json::Value,
    account_id: Option<Uuid>,
    #[serde(default)]
    tags: Vec<String>,
}

/// The tag rule of `tgwatch_core::tags`, the same as for `[[channels]]` in config.toml.
fn check_tags(tags: &[String]) -> Result<(), ApiError> {
    if tags.len() > tags::MAX_TAGS || tags::first_invalid(tags).is_some() {
        return Err(ApiError::bad_request(
            "invalid_tags",
            format!(
                "`tags` is a list of at most {} non-empty tags of up to {} characters",
                tags::MAX_TAGS,
                tags::MAX_TAG_CHARS
            ),
        ));
    }
    Ok(())
}

/// A channel as the API takes it: a username, a t.me link (an invite link too) or a numeric id.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // a schema only: the handler reads the value itself (ChannelInput::from_json)
enum ChannelReference {
    Text(String),
    Id(i64),
}

/// Starts monitoring a channel: an account joins it and its posts, edits and deletions are
/// stored from then on.
#[utoipa::path(
    operation_id = "create_channel",
    tag = "channels",
    request_body = NewChannelBody,
    responses(
        (status = 201, body = ChannelView),
        (status = 200, description = "A channel removed before, monitored again (the same record)", body = ChannelView),
        (status = 409, description = "Monitored already (`details.existing`), or no account can take it", body = ErrorBody),
        (status = 422, description = "Not a channel reference, or no such channel", body = ErrorBody),
    )
)]
#[post("/channels")]
#[tracing::instrument(name = "channels.create", skip_all)]
async fn create(
    state: web::Data<AppState>,
    body: params::Json<NewChannelBody>,
) -> Result<HttpResponse, ApiError> {
    add(state, body).await
}

/// `POST /api/channels` under the name seed 001 gives it.
#[utoipa::path(
    operation_id = "create_channel_seed_name",
    tag = "channels",
    request_body = NewChannelBody,
    responses(
        (status = 201, body = ChannelView),
        (status = 200, description = "A channel removed before, monitored again (the same record)", body = ChannelView),
        (status = 409, description = "Monitored already (`details.existing`), or no account can take it", body = ErrorBody),
        (status = 422, description = "Not a channel reference, or no such channel", body = ErrorBody),
    )
)]
#[post("/channel")]
#[tracing::instrument(name = "channels.create_by_seed_name", skip_all)]
async fn create_by_seed_name(
    state: web::Data<AppState>,
    body: params::Json<NewChannelBody>,
) -> Result<HttpResponse, ApiError> {
    add(state, body).await
}

async fn add(
    state: web::Data<AppState>,
    body: params::Json<NewChannelBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_tags(&body.tags)?;
    let channel = ChannelInput::from_json(&body.channel)?;
    let added = state
        .channels
        .add(
            AddChannel {
                channel,
                account_id: body.account_id,
                tags: body.tags,
            },
            Origin::Api,
        )
        .await?;
    // A channel removed before comes back as the same record: 200, not a new resource.
    let status = if added.rejoined {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(HttpResponse::build(status).json(ChannelView::from(added.channel)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ChannelQuery {
    is_active: Option<bool>,
    account_id: Option<Uuid>,
    username: Option<String>,
    tag: Option<String>,
    status: Option<ChannelStatus>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// The monitored channels, a page at a time.
#[utoipa::path(
    operation_id = "list_channels",
    tag = "channels",
    params(ChannelQuery),
    responses((status = 200, body = Page<ChannelView>))
)]
#[get("/channels")]
#[tracing::instrument(name = "channels.list", skip_all)]
async fn list(
    state: web::Data<AppState>,
    query: params::Query<ChannelQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let filter = ChannelFilter {
        is_active: query.is_active,
        account_id: query.account_id,
        username: query.username,
        tag: query.tag,
        status: query.status,
    };
    let page = storage::channels::list(
        &state.db,
        filter,
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(ChannelView::from)))
}

async fn find(state: &AppState, id: Uuid) -> Result<channels::Model, ApiError> {
    storage::channels::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel", id))
}

#[utoipa::path(
    operation_id = "get_channel",
    tag = "channels",
    responses((status = 200, body = ChannelView), (status = 404, body = ErrorBody))
)]
#[get("/channels/{id}")]
#[tracing::instrument(name = "channels.get", skip_all, fields(channel_id = %id))]
async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let channel = find(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ChannelView::from(channel)))
}

/// Changes tags, pauses or resumes storing (`is_active`), or moves the channel to an account.
/// A channel removed from monitoring comes back with `is_active: true`.
#[utoipa::path(
    operation_id = "update_channel",
    tag = "channels",
    request_body = ChannelPatch,
    responses(
        (status = 200, body = ChannelView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The channel was removed from monitoring, or no account can take it", body = ErrorBody),
    )
)]
#[patch("/channels/{id}")]
#[tracing::instrument(name = "channels.update", skip_all, fields(channel_id = %id))]
async fn update(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<ChannelPatch>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.into_inner();
    if let Some(tags) = &patch.tags {
        check_tags(tags)?;
    }
    let mut existing = find(&state, id.into_inner()).await?;
    if existing.status == ChannelStatus::Left {
        if patch.is_active != Some(true) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "channel_left",
                "the channel was removed from monitoring; set `is_active` to true (or add it again) to monitor it again",
            ));
        }
        existing = state
            .channels
            .rejoin(existing, patch.account_id, Origin::Api)
            .await?;
    }
    let updated = state.channels.update(existing, patch).await?;
    Ok(HttpResponse::Ok().json(ChannelView::from(updated)))
}

/// Leaves the channel; its stored messages stay.
#[utoipa::path(
    operation_id = "delete_channel",
    tag = "channels",
    responses((status = 204, description = "Left (or left already)"), (status = 404, body = ErrorBody))
)]
#[delete("/channels/{id}")]
#[tracing::instrument(name = "channels.delete", skip_all, fields(channel_id = %id))]
async fn delete(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    if existing.status != ChannelStatus::Left {
        state.channels.remove(existing).await?;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
struct AssignmentView {
    account_id: Uuid,
    status: AssignmentStatus,
    reason: Option<String>,
    assigned_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
}

impl From<account_channel_assignments::Model> for AssignmentView {
    fn from(row: account_channel_assignments::Model) -> AssignmentView {
        AssignmentView {
            account_id: row.account_id,
            status: row.status,
            reason: row.reason,
            assigned_at: row.assigned_at,
            ended_at: row.ended_at,
        }
    }
}

/// Who watched the channel, oldest first unless `order=desc`.
#[utoipa::path(
    operation_id = "list_channel_assignments",
    tag = "channels",
    params(params::OrderQuery),
    responses((status = 200, body = params::Items<AssignmentView>), (status = 404, body = ErrorBody))
)]
#[get("/channels/{id}/assignments")]
#[tracing::instrument(name = "channels.assignments", skip_all, fields(channel_id = %id))]
async fn assignments(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: params::Query<params::OrderQuery>,
) -> Result<HttpResponse, ApiError> {
    let channel = find(&state, id.into_inner()).await?;
    let rows = storage::channels::assignments_of(&state.db, channel.id).await?;
    let items: Vec<AssignmentView> = params::in_order(rows, query.order)
        .into_iter()
        .map(AssignmentView::from)
        .collect();
    Ok(HttpResponse::Ok().json(params::Items { items }))
}

impl From<ChannelError> for ApiError {
    fn from(error: ChannelError) -> ApiError {
        let message = error.to_string();
        match error {
            ChannelError::BadReference(_) | ChannelError::BadInput => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_channel", message)
            }
            ChannelError::UnknownId(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_channel_id",
                message,
            ),
            ChannelError::AlreadyMonitored(existing) => {
                ApiError::new(StatusCode::CONFLICT, "already_monitored", message)
                    .with_details(json!({ "existing": ChannelView::from(*existing) }))
            }
            ChannelError::NoAccountAvailable(_) | ChannelError::AccountUnusable(..) => {
                ApiError::new(StatusCode::CONFLICT, "no_account_available", message)
            }
            ChannelError::UnknownAccount(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_account", message)
            }
            ChannelError::JoinFailed(telegram) if telegram.is_not_found() => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "channel_not_found",
                message,
            ),
            ChannelError::JoinFailed(telegram) => telegram.into(),
            // Each account said why: a channel none of them can see is not found, anything else
            // (a ban from the channel, a FLOOD_WAIT, a lost connection) leaves it unjoined now.
            ChannelError::NoAccountCouldJoin(attempts) => {
                let (status, code) = if attempts.iter().all(|attempt| attempt.not_found) {
                    (StatusCode::UNPROCESSABLE_ENTITY, "channel_not_found")
                } else {
                    (StatusCode::CONFLICT, "join_failed")
                };
                ApiError::new(status, code, message).with_details(json!({ "attempts": attempts }))
            }
            ChannelError::Resolve(error) => error.into(),
            ChannelError::Storage(error) => error.into(),
            ChannelError::Tracking(error) => error.into(),
        }
    }
}
