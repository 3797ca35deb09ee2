//! `/api/channels/{id}/messages`: the stored messages of a monitored channel (seed 001
//! Messages), newest first, and one message with its earlier versions.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{error::ApiError, params};
use crate::state::AppState;
use tgwatch_store::page::Order;
use tgwatch_store::{
    self as storage,
    entities::{message_versions, messages},
    messages::MessageFilter,
};

/// Longest `text` filter accepted: a search, not a document.
const MAX_TEXT_FILTER_CHARS: usize = 256;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/channels/{id}/messages", web::get().to(list))
        .route("/channels/{id}/messages/{message_id}", web::get().to(get));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageQuery {
    since: Option<String>,
    until: Option<String>,
    deleted: Option<bool>,
    text: Option<String>,
    limit: Option<u64>,
    cursor: Option<Uuid>,
    order: Option<Order>,
}

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

#[derive(Serialize)]
struct MessageView {
    id: Uuid,
    channel_id: Uuid,
    /// The Telegram message id (unique within the channel).
    message_id: i32,
    date: DateTime<Utc>,
    text: String,
    sender_id: Option<i64>,
    media_type: Option<String>,
    media_ref: Option<String>,
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
            media_type: row.media_type,
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
#[derive(Serialize)]
struct MessageWithVersionsView {
    #[serde(flatten)]
    message: MessageView,
    versions: Vec<VersionView>,
}

#[derive(Serialize)]
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
