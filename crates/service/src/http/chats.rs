//! Reading an account's chats (seed 003): its dialogs and their messages, straight from Telegram
//! through the account's live session. Nothing is stored.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
};
use crate::{actors::supervisor, state::AppState};
use tgwatch_telegram::{ChatKind, ChatMessage, Dialog, TelegramSession};

/// Most chats or messages one request returns.
const MAX_LIMIT: usize = 100;

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(chats).service(messages);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ChatsQuery {
    /// 1 to 100 (default 50).
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ChatView {
    chat_id: i64,
    /// `user`, `group` or `channel`.
    kind: &'static str,
    id: i64,
    title: String,
    username: Option<String>,
    last_message_id: Option<i32>,
    last_message_date: Option<DateTime<Utc>>,
}

impl From<Dialog> for ChatView {
    fn from(dialog: Dialog) -> ChatView {
        ChatView {
            chat_id: dialog.chat_id,
            kind: kind_name(dialog.kind),
            id: dialog.id,
            title: dialog.title,
            username: dialog.username,
            last_message_id: dialog.last_message_id,
            last_message_date: dialog.last_message_date,
        }
    }
}

fn kind_name(kind: ChatKind) -> &'static str {
    match kind {
        ChatKind::User => "user",
        ChatKind::Group => "group",
        ChatKind::Channel => "channel",
    }
}

/// The account's live session, or why there is none.
pub(super) async fn account_session(
    state: &AppState,
    account_id: Uuid,
) -> Result<std::sync::Arc<dyn TelegramSession>, ApiError> {
    tgwatch_store::accounts::get(&state.db, account_id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", account_id))?;
    Ok(supervisor::account_session(&state.supervisor, account_id).await?)
}

fn limit(requested: Option<usize>) -> Result<usize, ApiError> {
    match requested.unwrap_or(50) {
        limit @ 1..=MAX_LIMIT => Ok(limit),
        _ => Err(ApiError::bad_request(
            "invalid_limit",
            format!("`limit` must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

/// The account's dialogs, newest first, read from Telegram now.
#[utoipa::path(
    operation_id = "list_account_chats",
    tag = "accounts",
    params(ChatsQuery),
    responses(
        (status = 200, body = params::Items<ChatView>),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The account is not running (inactive, banned or parked)", body = ErrorBody),
    )
)]
#[get("/accounts/{id}/chats")]
#[tracing::instrument(name = "chats.chats", skip_all, fields(account_id = %id))]
async fn chats(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: params::Query<ChatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let items = list_chats(&state, id.into_inner(), query.limit).await?;
    Ok(HttpResponse::Ok().json(params::Items { items }))
}

/// The account's dialogs (`limit` 1 to 100, default 50), read from Telegram now.
pub(super) async fn list_chats(
    state: &AppState,
    account_id: Uuid,
    limit: Option<usize>,
) -> Result<Vec<ChatView>, ApiError> {
    let limit = self::limit(limit)?;
    let session = account_session(state, account_id).await?;
    let dialogs = session.dialogs(limit).await?;
    Ok(dialogs.into_iter().map(ChatView::from).collect())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct MessagesQuery {
    /// Messages older than this id (paging backwards); the newest when absent.
    before_id: Option<i32>,
    /// 1 to 100 (default 50).
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct ChatMessageView {
    chat_id: i64,
    id: i32,
    date: DateTime<Utc>,
    text: String,
    media_type: Option<&'static str>,
    media_ref: Option<String>,
    edit_date: Option<DateTime<Utc>>,
    sender_id: Option<i64>,
    outgoing: bool,
}

impl From<ChatMessage> for ChatMessageView {
    fn from(message: ChatMessage) -> ChatMessageView {
        ChatMessageView {
            chat_id: message.chat_id,
            id: message.id,
            date: message.date,
            text: message.text,
            media_type: message.media.as_ref().map(|media| media.kind.as_str()),
            media_ref: message.media.map(|media| media.reference),
            edit_date: message.edit_date,
            sender_id: message.sender_id,
            outgoing: message.outgoing,
        }
    }
}

/// A page of a chat's messages.
#[derive(Serialize, ToSchema)]
pub(super) struct ChatMessagesView {
    items: Vec<ChatMessageView>,
    /// `before_id` of the next (older) page; absent at the oldest.
    next_before_id: Option<i32>,
}

/// A chat's messages, newest first, read from Telegram now.
#[utoipa::path(
    operation_id = "list_account_chat_messages",
    tag = "accounts",
    params(
        ("id" = Uuid, Path, description = "The account"),
        ("chat_id" = i64, Path, description = "The chat's id (`chat_id` of the chats list)"),
        MessagesQuery,
    ),
    responses(
        (status = 200, body = ChatMessagesView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The account is not running (inactive, banned or parked)", body = ErrorBody),
    )
)]
#[get("/accounts/{id}/chats/{chat_id}/messages")]
#[tracing::instrument(name = "chats.messages", skip_all, fields(account_id = %path.0, chat_id = path.1))]
async fn messages(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, i64)>,
    query: params::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let (account_id, chat_id) = path.into_inner();
    let page = chat_messages(&state, account_id, chat_id, query.before_id, query.limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// A page of a chat's messages, newest first, read from Telegram now.
pub(super) async fn chat_messages(
    state: &AppState,
    account_id: Uuid,
    chat_id: i64,
    before_id: Option<i32>,
    limit: Option<usize>,
) -> Result<ChatMessagesView, ApiError> {
    let limit = self::limit(limit)?;
    let before_id = before_id.unwrap_or(0);
    if before_id < 0 {
        return Err(ApiError::bad_request(
            "invalid_before_id",
            "`before_id` must be positive",
        ));
    }
    let session = account_session(state, account_id).await?;
    let history = session.chat_history(chat_id, before_id, limit).await?;
    let next_before_id = (history.len() == limit)
        .then(|| history.last().map(|message| message.id))
        .flatten();
    let items: Vec<ChatMessageView> = history.into_iter().map(ChatMessageView::from).collect();
    Ok(ChatMessagesView {
        items,
        next_before_id,
    })
}
