//! `channels` and `account_channel_assignments`: which channels are monitored, by whom, and who
//! watched them before.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, prelude::Expr,
};
use serde::Deserialize;
use tgwatch_core::config::Origin;
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{account_channel_assignments as assignments, channels},
    page::{self, Order, Page},
};
use tgwatch_core::telegram::TelegramChannel;

pub use crate::entities::channels::ChannelStatus;

impl std::fmt::Display for ChannelStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ChannelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Active => "active",
            ChannelStatus::Unassigned => "unassigned",
            ChannelStatus::Failed => "failed",
            ChannelStatus::Left => "left",
        }
    }
}

pub use crate::entities::account_channel_assignments::AssignmentStatus;

/// How an assignment ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignmentEnd {
    /// The account was banned or parked: the channel moved on.
    Reassigned,
    /// The channel was removed or moved by an operator.
    Left,
    Failed,
}

impl AssignmentEnd {
    fn as_str(self) -> &'static str {
        match self {
            AssignmentEnd::Reassigned => "reassigned",
            AssignmentEnd::Left => "left",
            AssignmentEnd::Failed => "failed",
        }
    }
}

/// A channel to create: how it was named, and (once joined) what Telegram says about it.
pub struct NewChannel {
    pub username: Option<String>,
    pub invite_hash: Option<String>,
    pub tags: Vec<String>,
    pub source: Origin,
}

#[derive(Debug, Default)]
pub struct ChannelFilter {
    pub is_active: Option<bool>,
    pub account_id: Option<Uuid>,
    pub username: Option<String>,
    pub tag: Option<String>,
    pub status: Option<ChannelStatus>,
}

pub async fn get(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<channels::Model>, StorageError> {
    channels::Entity::find_by_id(id)
        .one(db)
        .await
        .doing("loading a channel")
}

/// A channel already monitored under any of these names (Telegram id, username, invite hash).
pub async fn find_existing(
    db: &DatabaseConnection,
    telegram_channel_id: Option<i64>,
    username: Option<&str>,
    invite_hash: Option<&str>,
) -> Result<Option<channels::Model>, StorageError> {
    let mut any = Condition::any();
    if let Some(id) = telegram_channel_id {
        any = any.add(channels::Column::TelegramChannelId.eq(id));
    }
    if let Some(username) = username {
        any = any.add(channels::Column::Username.eq(username.to_ascii_lowercase()));
    }
    if let Some(hash) = invite_hash {
        any = any.add(channels::Column::InviteHash.eq(hash));
    }
    if any.is_empty() {
        return Ok(None);
    }
    channels::Entity::find()
        .filter(any)
        .filter(channels::Column::Status.ne(ChannelStatus::Left.as_str()))
        .one(db)
        .await
        .doing("looking for a monitored channel")
}

/// The record of a Telegram channel, whatever its status (one per channel: the id is unique).
pub async fn find_by_telegram_id(
    db: &DatabaseConnection,
    telegram_channel_id: i64,
) -> Result<Option<channels::Model>, StorageError> {
    channels::Entity::find()
        .filter(channels::Column::TelegramChannelId.eq(telegram_channel_id))
        .one(db)
        .await
        .doing("looking for a channel by its Telegram id")
}

/// A channel that was removed (`left`) and that `account_id` has just joined again: the same
/// record becomes active, with a new assignment; its messages and earlier assignments stay.
/// Tags and an invite link given now replace the old ones; `source` is who asked.
pub async fn rejoin(
    db: &DatabaseConnection,
    left: channels::Model,
    new: NewChannel,
    joined: &TelegramChannel,
    account_id: Uuid,
    newest_message_id: i32,
    now: DateTime<Utc>,
) -> Result<channels::Model, StorageError> {
    let txn = super::begin_write(db, "starting to rejoin a channel").await?;
    let channel_id = left.id;
    let last_message_id = left.last_message_id.max(newest_message_id);
    let username = joined
        .username
        .clone()
        .or(new.username)
        .or(left.username.clone())
        .map(|name| name.to_ascii_lowercase());
    let invite_hash = new.invite_hash.or(left.invite_hash.clone());
    let mut row = left.into_active_model();
    row.access_hash = Set(Some(joined.access_hash));
    row.username = Set(username);
    row.invite_hash = Set(invite_hash);
    row.title = Set(Some(joined.title.clone()));
    row.about = Set(joined.about.clone());
    row.member_count = Set(joined.participants_count);
    if !new.tags.is_empty() {
        row.tags = Set(serde_json::to_string(&new.tags).unwrap_or_else(|_| "[]".into()));
    }
    row.is_active = Set(true);
    row.status = Set(ChannelStatus::Active);
    row.status_reason = Set(None);
    row.account_id = Set(Some(account_id));
    row.date_joined = Set(Some(now));
    row.last_message_id = Set(last_message_id);
    row.source = Set(new.source);
    row.updated_at = Set(now);
    let row = row.update(&txn).await.doing("rejoining a channel")?;
    end_assignments(&txn, channel_id, AssignmentEnd::Left, None, now).await?;
    start_assignment(&txn, channel_id, account_id, now).await?;
    txn.commit().await.doing("committing a rejoined channel")?;
    Ok(row)
}

/// Stores a channel that `account_id` has just joined, with its first assignment.
pub async fn create_joined(
    db: &DatabaseConnection,
    new: NewChannel,
    joined: &TelegramChannel,
    account_id: Uuid,
    last_message_id: i32,
    now: DateTime<Utc>,
) -> Result<channels::Model, StorageError> {
    let txn = super::begin_write(db, "starting to store a new channel").await?;
    let row = channels::ActiveModel {
        id: Set(Uuid::now_v7()),
        telegram_channel_id: Set(Some(joined.id)),
        access_hash: Set(Some(joined.access_hash)),
        username: Set(joined
            .username
            .clone()
            .or(new.username)
            .map(|name| name.to_ascii_lowercase())),
        invite_hash: Set(new.invite_hash),
        title: Set(Some(joined.title.clone())),
        about: Set(joined.about.clone()),
        member_count: Set(joined.participants_count),
        tags: Set(serde_json::to_string(&new.tags).unwrap_or_else(|_| "[]".into())),
        is_active: Set(true),
        status: Set(ChannelStatus::Active),
        status_reason: Set(None),
        account_id: Set(Some(account_id)),
        date_joined: Set(Some(now)),
        last_message_id: Set(last_message_id),
        last_event_at: Set(None),
        source: Set(new.source),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&txn)
    .await
    .doing("storing a new channel")?;
    start_assignment(&txn, row.id, account_id, now).await?;
    txn.commit().await.doing("committing a new channel")?;
    Ok(row)
}

async fn start_assignment(
    db: &impl ConnectionTrait,
    channel_id: Uuid,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    assignments::ActiveModel {
        id: Set(Uuid::now_v7()),
        channel_id: Set(channel_id),
        account_id: Set(account_id),
        status: Set(AssignmentStatus::Active),
        reason: Set(None),
        assigned_at: Set(now),
        ended_at: Set(None),
    }
    .insert(db)
    .await
    .doing("recording a channel assignment")?;
    Ok(())
}

async fn end_assignments(
    db: &impl ConnectionTrait,
    channel_id: Uuid,
    end: AssignmentEnd,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    assignments::Entity::update_many()
        .col_expr(assignments::Column::Status, Expr::value(end.as_str()))
        .col_expr(assignments::Column::Reason, Expr::value(reason))
        .col_expr(assignments::Column::EndedAt, Expr::value(now))
        .filter(assignments::Column::ChannelId.eq(channel_id))
        .filter(assignments::Column::Status.eq(AssignmentStatus::Active))
        .exec(db)
        .await
        .doing("ending a channel assignment")?;
    Ok(())
}

/// The channel is now watched by `account_id` (after a reassignment or a move).
pub async fn reassign(
    db: &DatabaseConnection,
    channel_id: Uuid,
    account_id: Uuid,
    joined: &TelegramChannel,
    end: AssignmentEnd,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting a channel reassignment").await?;
    end_assignments(&txn, channel_id, end, Some(reason), now).await?;
    start_assignment(&txn, channel_id, account_id, now).await?;
    channels::Entity::update_many()
        .col_expr(channels::Column::AccountId, Expr::value(account_id))
        .col_expr(channels::Column::DateJoined, Expr::value(now))
        .col_expr(
            channels::Column::AccessHash,
            Expr::value(joined.access_hash),
        )
        .col_expr(
            channels::Column::Status,
            Expr::value(ChannelStatus::Active.as_str()),
        )
        .col_expr(
            channels::Column::StatusReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(channels::Column::UpdatedAt, Expr::value(now))
        .filter(channels::Column::Id.eq(channel_id))
        .exec(&txn)
        .await
        .doing("moving a channel to another account")?;
    txn.commit()
        .await
        .doing("committing a channel reassignment")
}

/// The channel has no account (none healthy with room) or cannot be joined: its assignment
/// ends and it waits with `status` and the reason.
pub async fn set_unwatched(
    db: &DatabaseConnection,
    channel_id: Uuid,
    status: ChannelStatus,
    end: AssignmentEnd,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting to park a channel").await?;
    end_assignments(&txn, channel_id, end, Some(reason), now).await?;
    let mut update = channels::Entity::update_many()
        .col_expr(channels::Column::Status, Expr::value(status.as_str()))
        .col_expr(channels::Column::StatusReason, Expr::value(reason))
        .col_expr(channels::Column::UpdatedAt, Expr::value(now));
    if status != ChannelStatus::Failed {
        update = update.col_expr(
            channels::Column::AccountId,
            Expr::value(Option::<Uuid>::None),
        );
    }
    if status == ChannelStatus::Left {
        update = update.col_expr(channels::Column::IsActive, Expr::value(false));
    }
    update
        .filter(channels::Column::Id.eq(channel_id))
        .exec(&txn)
        .await
        .doing("parking a channel")?;
    txn.commit().await.doing("committing a parked channel")
}

/// What an operator may change on a channel.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    pub tags: Option<Vec<String>>,
    /// false pauses storing its messages (the account stays a member).
    pub is_active: Option<bool>,
    /// Move the channel to this account.
    pub account_id: Option<Uuid>,
}

pub async fn update_flags(
    db: &DatabaseConnection,
    existing: channels::Model,
    tags: Option<Vec<String>>,
    is_active: Option<bool>,
    now: DateTime<Utc>,
) -> Result<channels::Model, StorageError> {
    let mut row = existing.into_active_model();
    if let Some(tags) = tags {
        row.tags = Set(serde_json::to_string(&tags).unwrap_or_else(|_| "[]".into()));
    }
    if let Some(is_active) = is_active {
        row.is_active = Set(is_active);
    }
    row.updated_at = Set(now);
    row.update(db).await.doing("updating a channel")
}

/// Refreshes what Telegram says about the channel.
pub async fn set_metadata(
    db: &DatabaseConnection,
    channel_id: Uuid,
    info: &TelegramChannel,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    channels::Entity::update_many()
        .col_expr(channels::Column::Title, Expr::value(info.title.clone()))
        .col_expr(channels::Column::About, Expr::value(info.about.clone()))
        .col_expr(
            channels::Column::MemberCount,
            Expr::value(info.participants_count),
        )
        .col_expr(channels::Column::UpdatedAt, Expr::value(now))
        .filter(channels::Column::Id.eq(channel_id))
        .exec(db)
        .await
        .doing("refreshing a channel's details")?;
    Ok(())
}

pub async fn list(
    db: &DatabaseConnection,
    filter: ChannelFilter,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<channels::Model>, StorageError> {
    let mut select = channels::Entity::find();
    if let Some(is_active) = filter.is_active {
        select = select.filter(channels::Column::IsActive.eq(is_active));
    }
    if let Some(account_id) = filter.account_id {
        select = select.filter(channels::Column::AccountId.eq(account_id));
    }
    if let Some(username) = filter.username {
        let username = username.trim_start_matches('@').to_ascii_lowercase();
        select = select.filter(channels::Column::Username.eq(username));
    }
    if let Some(tag) = filter.tag {
        // Tags are a JSON array of strings: match the quoted element.
        let quoted = serde_json::to_string(&tag).unwrap_or_default();
        select = select.filter(channels::Column::Tags.contains(quoted));
    }
    if let Some(status) = filter.status {
        select = select.filter(channels::Column::Status.eq(status.as_str()));
    }
    page::fetch(
        db,
        select,
        channels::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}

/// Every channel that is monitored (not left), for the channel router at start.
pub async fn monitored(db: &DatabaseConnection) -> Result<Vec<channels::Model>, StorageError> {
    channels::Entity::find()
        .filter(channels::Column::Status.ne(ChannelStatus::Left.as_str()))
        .order_by_asc(channels::Column::Id)
        .all(db)
        .await
        .doing("listing monitored channels")
}

/// The account's channels being watched.
pub async fn of_account(
    db: &DatabaseConnection,
    account_id: Uuid,
) -> Result<Vec<channels::Model>, StorageError> {
    channels::Entity::find()
        .filter(channels::Column::AccountId.eq(account_id))
        .filter(channels::Column::Status.eq(ChannelStatus::Active.as_str()))
        .order_by_asc(channels::Column::Id)
        .all(db)
        .await
        .doing("listing an account's channels")
}

pub async fn unassigned(db: &DatabaseConnection) -> Result<Vec<channels::Model>, StorageError> {
    channels::Entity::find()
        .filter(channels::Column::Status.eq(ChannelStatus::Unassigned.as_str()))
        .order_by_asc(channels::Column::Id)
        .all(db)
        .await
        .doing("listing unassigned channels")
}

pub async fn assignments_of(
    db: &DatabaseConnection,
    channel_id: Uuid,
) -> Result<Vec<assignments::Model>, StorageError> {
    assignments::Entity::find()
        .filter(assignments::Column::ChannelId.eq(channel_id))
        .order_by_asc(assignments::Column::AssignedAt)
        .order_by_asc(assignments::Column::Id)
        .all(db)
        .await
        .doing("listing a channel's assignments")
}
