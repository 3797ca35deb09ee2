//! `/api/channels/{id}/messages`: the stored messages of a monitored channel (seed 001
//! Messages), newest first, and one message with its earlier versions.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
};
use crate::state::AppState;
use tgwatch_store::page::{Order, Page};
use tgwatch_store::{
    self as storage,
    entities::{message_versions, messages},
    messages::MessageFilter,
};

/// Longest `text` filter accepted: a search, not a document.
const MAX_TEXT_FILTER_CHARS: usize = 256;

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(list).service(get);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct MessageQuery {
    /// Posted at or after: RFC 3339 (`2026-01-01T12:00:00Z`) or a date (`2026-01-01`).
    since: Option<String>,
    /// Posted before: RFC 3339 or a date.
    until: Option<String>,
    /// Only deleted messages (true) or only the others (false).
    deleted: Option<bool>,
    /// Contains this text (at most 256 characters).
    text: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    /// Newest first by default.
    order: Option<Order>,
}

/// The channel's stored messages, newest first, a page at a time.
#[utoipa::path(
    operation_id = "list_channel_messages",
    tag = "channels",
    params(MessageQuery),
    responses((status = 200, body = Page<MessageView>), (status = 404, body = ErrorBody))
)]
#[get("/channels/{id}/messages")]
#[tracing::instrument(name = "channel_messages.list", skip_all, fields(channel_id = %channel_id))]
async fn list(
    state: web::Data<AppState>,
    channel_id: web::Path<Uuid>,
    query: params::Query<MessageQuery>,
) -> Result<HttpResponse, ApiError> {
    let channel_id = channel_id.into_inner();
    let query = query.into_inner();
    let since = params::timestamp("since", query.since.as_deref())?;
    let until = params::timestamp("until", query.until.as_deref())?;
    params::ordered("since", since, "until", until)?;
    if let Some(text) = &query.text
        && text.chars().count() > MAX_TEXT_FILTER_CHARS
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("`text` is at most {MAX_TEXT_FILTER_CHARS} characters"),
        ));
    }
    let limit = params::limit(query.limit)?;
    known_channel(&state, channel_id).await?;
    let filter = MessageFilter {
        since,
        until,
        deleted: query.deleted,
        text: query.text,
    };
    let page = storage::messages::list(
        &state.db,
        channel_id,
        filter,
        limit,
        query.cursor,
        query.order.unwrap_or(Order::Desc),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(MessageView::from)))
}

/// One message (by its Telegram id) with what it said before each edit.
#[utoipa::path(
    operation_id = "get_channel_message",
    tag = "channels",
    params(
        ("id" = Uuid, Path, description = "The channel"),
        ("message_id" = i32, Path, description = "The Telegram message id"),
    ),
    responses((status = 200, body = MessageWithVersionsView), (status = 404, body = ErrorBody))
)]
#[get("/channels/{id}/messages/{message_id}")]
#[tracing::instrument(name = "channel_messages.get", skip_all, fields(channel_id = %path.0, message_id = path.1))]
async fn get(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, i32)>,
) -> Result<HttpResponse, ApiError> {
    let (channel_id, message_id) = path.into_inner();
    known_channel(&state, channel_id).await?;
    let row = storage::messages::get(&state.db, channel_id, message_id)
        .await?
        .ok_or_else(|| ApiError::not_found("message", message_id))?;
    let versions = storage::messages::versions(&state.db, row.id).await?;
    Ok(HttpResponse::Ok().json(MessageWithVersionsView {
        message: MessageView::from(row),
        versions: versions.into_iter().map(VersionView::from).collect(),
    }))
}

async fn known_channel(state: &AppState, channel_id: Uuid) -> Result<(), ApiError> {
    if storage::messages::channel_exists(&state.db, channel_id).await? {
        Ok(())
    } else {
        Err(ApiError::not_found("channel", channel_id))
    }
}

#[derive(Serialize, ToSchema)]
struct MessageView {
    id: Uuid,
    channel_id: Uuid,
    /// The Telegram message id (unique within the channel).
    message_id: i32,
    date: DateTime<Utc>,
    text: String,
    sender_id: Option<i64>,
    /// The post's signature, when the channel signs posts (seed 001).
    sender_name: Option<String>,
    media_type: Option<String>,
    media_ref: Option<String>,
    /// Seed 001's list of media: one entry per media item of the post (a Telegram message has
    /// at most one; an album is several messages). Media are not archived (yet): an entry is
    /// the media's reference (`photo:<id>:<access hash>`, `document:<id>:<access hash>`, or the
    /// media's TL name), enough to fetch it from Telegram with the message, not a URL to it.
    media_urls: Vec<String>,
    edit_date: Option<DateTime<Utc>>,
    version: i32,
    is_deleted: bool,
    deleted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<messages::Model> for MessageView {
    fn from(row: messages::Model) -> Self {
        MessageView {
            id: row.id,
            channel_id: row.channel_id,
            message_id: row.telegram_message_id,
            date: row.date,
            text: row.text,
            sender_id: row.sender_id,
            sender_name: row.sender_name,
            media_type: row.media_type,
            media_urls: row.media_ref.iter().cloned().collect(),
            media_ref: row.media_ref,
            edit_date: row.edit_date,
            version: row.version,
            is_deleted: row.is_deleted,
            deleted_at: row.deleted_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A message and what it said before each edit (oldest first; the message holds the current
/// contents).
#[derive(Serialize, ToSchema)]
struct MessageWithVersionsView {
    #[serde(flatten)]
    message: MessageView,
    versions: Vec<VersionView>,
}

#[derive(Serialize, ToSchema)]
struct VersionView {
    version: i32,
    text: String,
    media_type: Option<String>,
    media_ref: Option<String>,
    edit_date: Option<DateTime<Utc>>,
    /// When the edit that replaced these contents was stored.
    recorded_at: DateTime<Utc>,
}

impl From<message_versions::Model> for VersionView {
    fn from(row: message_versions::Model) -> Self {
        VersionView {
            version: row.version,
            text: row.text,
            media_type: row.media_type,
            media_ref: row.media_ref,
            edit_date: row.edit_date,
            recorded_at: row.recorded_at,
        }
    }
}
