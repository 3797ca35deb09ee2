//! The bot's tables: registered chats, their per-user choices, and the outbox of notifications
//! (`bot_messages`) with its fan-out from `events`, claims under a lease, and outcomes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
    prelude::Expr,
    sea_query::{Alias, ExprTrait, LockBehavior, LockType, Query},
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{
        bot_chats, bot_messages, bot_subscriptions, events, online_sessions, telegram_users,
        tracked_users,
    },
};

pub use crate::entities::bot_messages::MessageStatus;

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Sent => "sent",
            MessageStatus::Failed => "failed",
        }
    }
}

/// The bot's mark on `events`, next to the webhooks' `fanned_out`. It is not in the shared
/// `events` entity on purpose: event writers leave it to the column's default (false) and need
/// not know the bot exists.
fn bot_fanned_out() -> Expr {
    Expr::col((events::Entity, Alias::new("bot_fanned_out")))
}

/// What a `/start` tells about the chat it came from.
pub struct ChatInfo {
    pub chat_id: i64,
    pub chat_type: &'static str,
    pub title: Option<String>,
}

/// Registers a chat (or registers it again, active, with `owner` as its owner: whoever sent the
/// latest `/start`). Returns the row and whether it is new.
pub async fn register_chat(
    db: &DatabaseConnection,
    info: ChatInfo,
    owner: &telegram_users::Model,
    now: DateTime<Utc>,
) -> Result<(bot_chats::Model, bool), StorageError> {
    if let Some(existing) = chat(db, info.chat_id).await? {
        let mut row: bot_chats::ActiveModel = existing.into();
        row.chat_type = Set(info.chat_type.to_owned());
        row.title = Set(info.title);
        row.owner_id = Set(owner.id);
        row.is_active = Set(true);
        row.updated_at = Set(now);
        let row = row.update(db).await.doing("registering a chat again")?;
        return Ok((row, false));
    }
    let row = bot_chats::ActiveModel {
        id: Set(Uuid::now_v7()),
        chat_id: Set(info.chat_id),
        chat_type: Set(info.chat_type.to_owned()),
        title: Set(info.title),
        owner_id: Set(owner.id),
        notify: Set(true),
        digest: Set(false),
        last_digest_at: Set(None),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    };
    bot_chats::Entity::insert(row)
        .on_conflict_do_nothing_on([bot_chats::Column::ChatId])
        .exec_without_returning(db)
        .await
        .doing("registering a chat")?;
    let row = chat(db, info.chat_id)
        .await?
        .ok_or_else(|| StorageError::Corrupt(format!("chat {} vanished", info.chat_id)))?;
    Ok((row, true))
}

pub async fn chat(
    db: &DatabaseConnection,
    chat_id: i64,
) -> Result<Option<bot_chats::Model>, StorageError> {
    bot_chats::Entity::find()
        .filter(bot_chats::Column::ChatId.eq(chat_id))
        .one(db)
        .await
        .doing("loading a chat")
}

pub async fn set_chat_notify(
    db: &DatabaseConnection,
    chat: bot_chats::Model,
    notify: bool,
    now: DateTime<Utc>,
) -> Result<bot_chats::Model, StorageError> {
    let mut row: bot_chats::ActiveModel = chat.into();
    row.notify = Set(notify);
    row.updated_at = Set(now);
    row.update(db)
        .await
        .doing("switching a chat's notifications")
}

/// Turns the daily digest on or off. The last digest time stays, so switching off and on again
/// on the same day does not send a second one.
pub async fn set_chat_digest(
    db: &DatabaseConnection,
    chat: bot_chats::Model,
    digest: bool,
    now: DateTime<Utc>,
) -> Result<bot_chats::Model, StorageError> {
    let mut row: bot_chats::ActiveModel = chat.into();
    row.digest = Set(digest);
    row.updated_at = Set(now);
    row.update(db).await.doing("switching a chat's digest")
}

/// Records a chat's choice for one tracked user.
pub async fn set_subscription(
    db: &DatabaseConnection,
    chat: &bot_chats::Model,
    tracked_user_id: Uuid,
    notify: bool,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let existing = bot_subscriptions::Entity::find()
        .filter(bot_subscriptions::Column::BotChatId.eq(chat.id))
        .filter(bot_subscriptions::Column::TrackedUserId.eq(tracked_user_id))
        .one(db)
        .await
        .doing("loading a subscription")?;
    match existing {
        Some(existing) => {
            let mut row: bot_subscriptions::ActiveModel = existing.into();
            row.notify = Set(notify);
            row.updated_at = Set(now);
            row.update(db).await.doing("updating a subscription")?;
        }
        None => {
            let row = bot_subscriptions::ActiveModel {
                id: Set(Uuid::now_v7()),
                bot_chat_id: Set(chat.id),
                tracked_user_id: Set(tracked_user_id),
                notify: Set(notify),
                created_at: Set(now),
                updated_at: Set(now),
            };
            bot_subscriptions::Entity::insert(row)
                .on_conflict_do_nothing_on([
                    bot_subscriptions::Column::BotChatId,
                    bot_subscriptions::Column::TrackedUserId,
                ])
                .exec_without_returning(db)
                .await
                .doing("creating a subscription")?;
        }
    }
    Ok(())
}

/// A chat's own choices: tracked user id -> notify.
pub async fn subscriptions_of(
    db: &DatabaseConnection,
    bot_chat_id: Uuid,
) -> Result<HashMap<Uuid, bool>, StorageError> {
    Ok(bot_subscriptions::Entity::find()
        .filter(bot_subscriptions::Column::BotChatId.eq(bot_chat_id))
        .all(db)
        .await
        .doing("loading a chat's subscriptions")?
        .into_iter()
        .map(|row| (row.tracked_user_id, row.notify))
        .collect())
}

/// Telegram said the bot cannot write to this chat any more: stop queueing for it until the
/// next `/start` there.
pub async fn deactivate_chat(
    db: &DatabaseConnection,
    chat_id: i64,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    bot_chats::Entity::update_many()
        .col_expr(bot_chats::Column::IsActive, Expr::value(false))
        .col_expr(bot_chats::Column::UpdatedAt, Expr::value(now))
        .filter(bot_chats::Column::ChatId.eq(chat_id))
        .exec(db)
        .await
        .doing("deactivating a chat")?;
    Ok(())
}

/// A group became a supergroup with a new id: the chat and its pending messages move there.
pub async fn move_chat(
    db: &DatabaseConnection,
    from: i64,
    to: i64,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting a chat move").await?;
    bot_chats::Entity::update_many()
        .col_expr(bot_chats::Column::ChatId, Expr::value(to))
        .col_expr(bot_chats::Column::ChatType, Expr::value("supergroup"))
        .col_expr(bot_chats::Column::UpdatedAt, Expr::value(now))
        .filter(bot_chats::Column::ChatId.eq(from))
        .exec(&txn)
        .await
        .doing("moving a chat")?;
    bot_messages::Entity::update_many()
        .col_expr(bot_messages::Column::ChatId, Expr::value(to))
        .filter(bot_messages::Column::ChatId.eq(from))
        .filter(bot_messages::Column::Status.eq(MessageStatus::Pending.as_str()))
        .exec(&txn)
        .await
        .doing("moving a chat's pending messages")?;
    txn.commit().await.doing("committing a chat move")
}

/// Events the bot has not queued messages for yet, oldest first.
pub async fn pending_events(
    db: &DatabaseConnection,
    limit: u64,
) -> Result<Vec<events::Model>, StorageError> {
    events::Entity::find()
        .filter(bot_fanned_out().eq(false))
        .order_by_asc(events::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await
        .doing("loading events for the bot")
}

/// Who could receive notifications: the active chats with their owner, every chat's own choices,
/// and the tracked users' `notify` flags.
pub struct Audience {
    pub chats: Vec<(bot_chats::Model, telegram_users::Model)>,
    /// (bot chat id, tracked user id) -> notify
    pub subscriptions: HashMap<(Uuid, Uuid), bool>,
    /// tracked user id -> notify flag (active users only)
    pub tracked_notify: HashMap<Uuid, bool>,
}

pub async fn audience(db: &DatabaseConnection) -> Result<Audience, StorageError> {
    let chats = bot_chats::Entity::find()
        .filter(bot_chats::Column::IsActive.eq(true))
        .all(db)
        .await
        .doing("loading chats")?;
    let owner_ids: HashSet<Uuid> = chats.iter().map(|chat| chat.owner_id).collect();
    let owners: HashMap<Uuid, telegram_users::Model> = telegram_users::Entity::find()
        .filter(telegram_users::Column::Id.is_in(owner_ids))
        .all(db)
        .await
        .doing("loading chat owners")?
        .into_iter()
        .map(|owner| (owner.id, owner))
        .collect();
    let subscriptions = bot_subscriptions::Entity::find()
        .all(db)
        .await
        .doing("loading subscriptions")?
        .into_iter()
        .map(|row| ((row.bot_chat_id, row.tracked_user_id), row.notify))
        .collect();
    let tracked_notify = tracked_users::Entity::find()
        .filter(tracked_users::Column::IsActive.eq(true))
        .all(db)
        .await
        .doing("loading tracked users")?
        .into_iter()
        .map(|user| (user.id, user.notify))
        .collect();
    Ok(Audience {
        chats: chats
            .into_iter()
            .filter_map(|chat| {
                let owner = owners.get(&chat.owner_id)?.clone();
                Some((chat, owner))
            })
            .collect(),
        subscriptions,
        tracked_notify,
    })
}

/// A notification to queue.
pub struct NewBotMessage {
    pub chat_id: i64,
    pub dedupe_key: String,
    pub kind: String,
    pub text: String,
}

fn new_row(message: &NewBotMessage, now: DateTime<Utc>) -> bot_messages::ActiveModel {
    bot_messages::ActiveModel {
        id: Set(Uuid::now_v7()),
        chat_id: Set(message.chat_id),
        dedupe_key: Set(message.dedupe_key.clone()),
        kind: Set(message.kind.clone()),
        text: Set(message.text.clone()),
        status: Set(MessageStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_until: Set(None),
        last_error: Set(None),
        telegram_message_id: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
    }
}

async fn insert_messages(
    db: &impl ConnectionTrait,
    messages: &[NewBotMessage],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    // 13 columns: well under SQLite's limit of bound values per statement.
    for chunk in messages.chunks(500) {
        bot_messages::Entity::insert_many(chunk.iter().map(|m| new_row(m, now)))
            .on_conflict_do_nothing_on([
                bot_messages::Column::ChatId,
                bot_messages::Column::DedupeKey,
            ])
            .exec_without_returning(db)
            .await
            .doing("queueing bot messages")?;
    }
    Ok(())
}

/// Queues the messages of some events and marks the events handled, in one transaction. A
/// message already queued (another instance fanned the same event out) is not queued again.
pub async fn queue_event_messages(
    db: &DatabaseConnection,
    messages: &[NewBotMessage],
    handled_events: Vec<String>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting the bot fan-out").await?;
    insert_messages(&txn, messages, now).await?;
    for chunk in handled_events.chunks(500) {
        let mark = Query::update()
            .table(events::Entity)
            .value(Alias::new("bot_fanned_out"), true)
            .and_where(Expr::col(events::Column::Id).is_in(chunk.iter().cloned()))
            .to_owned();
        txn.execute(&mark)
            .await
            .doing("marking events handled by the bot")?;
    }
    txn.commit().await.doing("committing the bot fan-out")
}

/// Claims due messages until `lease_until`, at most `limit`, oldest first. A chat's messages go
/// out in the order they were queued: none is claimed for a chat in `busy` (this instance's
/// sender is at work there), nor for a chat with a pending message that waits for its retry or
/// is leased (perhaps to another instance). On PostgreSQL the rows are locked with SKIP LOCKED,
/// so several instances share the work without sending a message twice.
pub async fn claim(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
    busy: &HashSet<i64>,
) -> Result<Vec<bot_messages::Model>, StorageError> {
    let txn = super::begin_write(db, "starting a bot claim").await?;
    let held_back = Query::select()
        .column(bot_messages::Column::ChatId)
        .from(bot_messages::Entity)
        .and_where(Expr::col(bot_messages::Column::Status).eq(MessageStatus::Pending.as_str()))
        .cond_where(
            Condition::any()
                .add(Expr::col(bot_messages::Column::NextAttemptAt).gt(now))
                .add(Expr::col(bot_messages::Column::ClaimedUntil).gte(now)),
        )
        .to_owned();
    let mut select = bot_messages::Entity::find()
        .filter(bot_messages::Column::Status.eq(MessageStatus::Pending.as_str()))
        .filter(bot_messages::Column::NextAttemptAt.lte(now))
        .filter(bot_messages::Column::ChatId.not_in_subquery(held_back))
        .filter(
            Condition::any()
                .add(bot_messages::Column::ClaimedUntil.is_null())
                .add(bot_messages::Column::ClaimedUntil.lt(now)),
        )
        .order_by_asc(bot_messages::Column::CreatedAt)
        .order_by_asc(bot_messages::Column::Id)
        .limit(limit);
    if !busy.is_empty() {
        select = select.filter(bot_messages::Column::ChatId.is_not_in(busy.iter().copied()));
    }
    if txn.get_database_backend() == DbBackend::Postgres {
        select = select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let claimed = select.all(&txn).await.doing("finding due bot messages")?;
    if claimed.is_empty() {
        return Ok(claimed);
    }
    bot_messages::Entity::update_many()
        .col_expr(bot_messages::Column::ClaimedUntil, Expr::value(lease_until))
        .filter(bot_messages::Column::Id.is_in(claimed.iter().map(|m| m.id)))
        .exec(&txn)
        .await
        .doing("claiming bot messages")?;
    txn.commit().await.doing("committing a bot claim")?;
    Ok(claimed)
}

/// Extends the claims on `ids` to `lease_until` (their sender is still at work); messages
/// already recorded are left alone.
pub async fn extend_claims(
    db: &DatabaseConnection,
    ids: &[Uuid],
    lease_until: DateTime<Utc>,
) -> Result<(), StorageError> {
    bot_messages::Entity::update_many()
        .col_expr(bot_messages::Column::ClaimedUntil, Expr::value(lease_until))
        .filter(bot_messages::Column::Id.is_in(ids.iter().copied()))
        .filter(bot_messages::Column::Status.eq(MessageStatus::Pending.as_str()))
        .filter(bot_messages::Column::ClaimedUntil.is_not_null())
        .exec(db)
        .await
        .doing("renewing bot claims")?;
    Ok(())
}

/// What became of one try to send a message.
#[derive(Clone, Debug, PartialEq)]
pub enum SendOutcome {
    Sent {
        telegram_message_id: i32,
    },
    /// Try again at `at`. `attempted` is false for a message that was not sent at all (held
    /// back behind an earlier one of its chat), so it does not count as a try.
    Retry {
        at: DateTime<Utc>,
        error: String,
        attempted: bool,
    },
    /// Telegram will never take it (the bot was blocked, the chat is gone).
    Failed {
        error: String,
    },
}

pub async fn record(
    db: &DatabaseConnection,
    message: &bot_messages::Model,
    outcome: SendOutcome,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut row: bot_messages::ActiveModel = message.clone().into();
    row.claimed_until = Set(None);
    match outcome {
        SendOutcome::Sent {
            telegram_message_id,
        } => {
            row.status = Set(MessageStatus::Sent);
            row.attempts = Set(message.attempts + 1);
            row.telegram_message_id = Set(Some(telegram_message_id));
            row.sent_at = Set(Some(now));
        }
        SendOutcome::Retry {
            at,
            error,
            attempted,
        } => {
            if attempted {
                row.attempts = Set(message.attempts + 1);
                row.last_error = Set(Some(error));
            }
            row.next_attempt_at = Set(at);
        }
        SendOutcome::Failed { error } => {
            row.status = Set(MessageStatus::Failed);
            row.attempts = Set(message.attempts + 1);
            row.last_error = Set(Some(error));
        }
    }
    row.update(db)
        .await
        .doing("recording a bot message's outcome")?;
    Ok(())
}

/// Chats that want a digest and have not had the one due at `due`.
pub async fn chats_due_for_digest(
    db: &DatabaseConnection,
    due: DateTime<Utc>,
) -> Result<Vec<bot_chats::Model>, StorageError> {
    bot_chats::Entity::find()
        .filter(bot_chats::Column::Digest.eq(true))
        .filter(bot_chats::Column::IsActive.eq(true))
        .filter(
            Condition::any()
                .add(bot_chats::Column::LastDigestAt.is_null())
                .add(bot_chats::Column::LastDigestAt.lt(due)),
        )
        .all(db)
        .await
        .doing("finding chats due for a digest")
}

/// Queues a chat's digest and notes it as done for `due`, together.
pub async fn queue_digest(
    db: &DatabaseConnection,
    chat: &bot_chats::Model,
    message: NewBotMessage,
    due: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting to queue a digest").await?;
    insert_messages(&txn, std::slice::from_ref(&message), now).await?;
    bot_chats::Entity::update_many()
        .col_expr(bot_chats::Column::LastDigestAt, Expr::value(due))
        .filter(bot_chats::Column::Id.eq(chat.id))
        .exec(&txn)
        .await
        .doing("noting a digest")?;
    txn.commit().await.doing("committing a digest")
}

/// The most recent session of a user (open or closed): when they were last seen online.
pub async fn latest_session_of(
    db: &DatabaseConnection,
    tracked_user_id: Uuid,
) -> Result<Option<online_sessions::Model>, StorageError> {
    online_sessions::Entity::find()
        .filter(online_sessions::Column::TrackedUserId.eq(tracked_user_id))
        .order_by_desc(online_sessions::Column::LastOnlineAt)
        .one(db)
        .await
        .doing("loading the latest session")
}
