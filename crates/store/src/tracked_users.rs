//! `tracked_users`: who the fleet watches (seed 002 TrackedUser, seed 000 target).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, prelude::Expr,
};
use tgwatch_core::config::Origin;
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{online_sessions, tracked_users},
    page::{self, Order, Page},
};
use tgwatch_core::telegram::{TelegramUser, Username};

/// A tracked user as resolved through an account.
pub struct Resolved {
    pub account_id: Uuid,
    pub user: TelegramUser,
}

#[derive(Debug, Default)]
pub struct TrackedUserFilter {
    pub username: Option<Username>,
    pub account_id: Option<Uuid>,
    pub telegram_user_id: Option<i64>,
    pub is_active: Option<bool>,
    /// Online now (true) or not (false): whether the user has an open online session.
    pub online: Option<bool>,
}

/// The row that already stands for this user (same username or same Telegram id), active or not.
pub async fn find_existing(
    db: &DatabaseConnection,
    username: Option<&Username>,
    telegram_user_id: Option<i64>,
) -> Result<Option<tracked_users::Model>, StorageError> {
    let mut any = Condition::any();
    if let Some(username) = username {
        any = any.add(tracked_users::Column::Username.eq(username.as_str()));
    }
    if let Some(id) = telegram_user_id {
        any = any.add(tracked_users::Column::TelegramUserId.eq(id));
    }
    if any.is_empty() {
        return Ok(None);
    }
    tracked_users::Entity::find()
        .filter(any)
        .one(db)
        .await
        .doing("looking for an existing tracked user")
}

/// The per-user choices of a track request, and who owns the row from then on.
pub struct TrackFlags {
    /// None keeps the stored choice of a user tracked before (false for a new user).
    pub notify: Option<bool>,
    /// None keeps the stored choice of a user tracked before (true for a new user).
    pub visible_online: Option<bool>,
    /// `api` or `config`.
    pub source: Origin,
}

/// What [`track`] did.
pub enum Tracked {
    /// The user is tracked now (a new row, or the row of a user tracked before).
    Now(tracked_users::Model),
    /// The row was tracked again by someone else in the meantime (two requests at once).
    Already(tracked_users::Model),
}

/// Starts tracking a resolved user, or tracks again a user tracked before (keeping the history).
/// Two requests for the same inactive user are told apart here: the row is activated only if it
/// is still inactive, so exactly one of them tracks it.
pub async fn track(
    db: &DatabaseConnection,
    existing: Option<tracked_users::Model>,
    resolved: Resolved,
    flags: TrackFlags,
    now: DateTime<Utc>,
) -> Result<Tracked, StorageError> {
    let user = resolved.user;
    let username = user
        .username
        .as_deref()
        .and_then(|name| Username::parse(name).ok())
        .map(String::from);
    let txn = super::begin_write(db, "starting to track a user").await?;
    // Telegram says the username is this user's now: a row that still carries it for someone
    // else has a stale name (they renamed, and it was taken), which must not block this one.
    if let Some(username) = &username {
        tracked_users::Entity::update_many()
            .col_expr(
                tracked_users::Column::Username,
                Expr::value(Option::<String>::None),
            )
            .filter(tracked_users::Column::Username.eq(username.as_str()))
            .filter(
                Condition::any()
                    .add(tracked_users::Column::TelegramUserId.ne(user.id))
                    .add(tracked_users::Column::TelegramUserId.is_null()),
            )
            .filter(
                tracked_users::Column::Id.ne(existing.as_ref().map_or(Uuid::nil(), |row| row.id)),
            )
            .exec(&txn)
            .await
            .doing("clearing a username Telegram gave to someone else")?;
    }
    let tracked = match existing {
        Some(existing) => {
            let id = existing.id;
            let updated = tracked_users::Entity::update_many()
                .col_expr(tracked_users::Column::TelegramUserId, Expr::value(user.id))
                .col_expr(tracked_users::Column::Username, Expr::value(username))
                .col_expr(
                    tracked_users::Column::FirstName,
                    Expr::value(user.first_name),
                )
                .col_expr(
                    tracked_users::Column::AccessHash,
                    Expr::value(user.access_hash),
                )
                .col_expr(
                    tracked_users::Column::AccountId,
                    Expr::value(resolved.account_id),
                )
                .col_expr(
                    tracked_users::Column::Notify,
                    Expr::value(flags.notify.unwrap_or(existing.notify)),
                )
                .col_expr(
                    tracked_users::Column::VisibleOnline,
                    Expr::value(flags.visible_online.unwrap_or(existing.visible_online)),
                )
                .col_expr(tracked_users::Column::IsActive, Expr::value(true))
                .col_expr(tracked_users::Column::Source, Expr::value(flags.source))
                .col_expr(tracked_users::Column::UpdatedAt, Expr::value(now))
                .filter(tracked_users::Column::Id.eq(id))
                .filter(tracked_users::Column::IsActive.eq(false))
                .exec(&txn)
                .await
                .doing("tracking a user again")?;
            let row = tracked_users::Entity::find_by_id(id)
                .one(&txn)
                .await
                .doing("loading a tracked user")?
                .ok_or_else(|| StorageError::Corrupt(format!("tracked user {id} vanished")))?;
            if updated.rows_affected == 0 {
                Tracked::Already(row)
            } else {
                Tracked::Now(row)
            }
        }
        None => Tracked::Now(
            tracked_users::ActiveModel {
                id: Set(Uuid::now_v7()),
                telegram_user_id: Set(Some(user.id)),
                username: Set(username),
                first_name: Set(user.first_name),
                access_hash: Set(Some(user.access_hash)),
                account_id: Set(Some(resolved.account_id)),
                visible_online: Set(flags.visible_online.unwrap_or(true)),
                notify: Set(flags.notify.unwrap_or(false)),
                is_active: Set(true),
                source: Set(flags.source),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(&txn)
            .await
            .doing("creating a tracked user")?,
        ),
    };
    txn.commit().await.doing("committing a tracked user")?;
    Ok(tracked)
}

pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<tracked_users::Model>, StorageError> {
    tracked_users::Entity::find_by_id(id)
        .one(db)
        .await
        .doing("loading a tracked user")
}

pub async fn active(db: &DatabaseConnection) -> Result<Vec<tracked_users::Model>, StorageError> {
    tracked_users::Entity::find()
        .filter(tracked_users::Column::IsActive.eq(true))
        .all(db)
        .await
        .doing("loading tracked users")
}

pub async fn list(
    db: &DatabaseConnection,
    filter: TrackedUserFilter,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<tracked_users::Model>, StorageError> {
    let mut select = tracked_users::Entity::find();
    if let Some(username) = filter.username {
        select = select.filter(tracked_users::Column::Username.eq(username.as_str()));
    }
    if let Some(account_id) = filter.account_id {
        select = select.filter(tracked_users::Column::AccountId.eq(account_id));
    }
    if let Some(id) = filter.telegram_user_id {
        select = select.filter(tracked_users::Column::TelegramUserId.eq(id));
    }
    if let Some(is_active) = filter.is_active {
        select = select.filter(tracked_users::Column::IsActive.eq(is_active));
    }
    if let Some(online) = filter.online {
        let open = sea_orm::sea_query::Query::select()
            .column(online_sessions::Column::TrackedUserId)
            .from(online_sessions::Entity)
            .and_where(online_sessions::Column::EndedAt.is_null())
            .to_owned();
        select = select.filter(if online {
            tracked_users::Column::Id.in_subquery(open)
        } else {
            tracked_users::Column::Id.not_in_subquery(open)
        });
    }
    page::fetch(
        db,
        select,
        tracked_users::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}

/// Ids of the users matching a username (for filters that take a username).
pub async fn ids_by_username(
    db: &DatabaseConnection,
    username: &Username,
) -> Result<Vec<Uuid>, StorageError> {
    Ok(tracked_users::Entity::find()
        .filter(tracked_users::Column::Username.eq(username.as_str()))
        .all(db)
        .await
        .doing("finding tracked users by username")?
        .into_iter()
        .map(|row| row.id)
        .collect())
}

/// The people whose online state is hidden (`visible_online = false`): the bot, the live feed
/// and seed 002's online-statuses list leave it out (see
/// `tgwatch_core::events::shows_online_state`).
pub async fn online_hidden(db: &DatabaseConnection) -> Result<HashSet<Uuid>, StorageError> {
    Ok(tracked_users::Entity::find()
        .filter(tracked_users::Column::VisibleOnline.eq(false))
        .all(db)
        .await
        .doing("loading who hides their online state")?
        .into_iter()
        .map(|row| row.id)
        .collect())
}

pub struct TrackedUserPatch {
    pub notify: Option<bool>,
    pub visible_online: Option<bool>,
    /// The user as an account resolved them again (a move to that account, or a new username):
    /// the account, access hash and names follow.
    pub resolved: Option<Resolved>,
}

pub async fn update(
    db: &DatabaseConnection,
    existing: tracked_users::Model,
    patch: TrackedUserPatch,
    now: DateTime<Utc>,
) -> Result<tracked_users::Model, StorageError> {
    let mut row: tracked_users::ActiveModel = existing.into();
    if let Some(notify) = patch.notify {
        row.notify = Set(notify);
    }
    if let Some(visible_online) = patch.visible_online {
        row.visible_online = Set(visible_online);
    }
    if let Some(resolved) = patch.resolved {
        row.account_id = Set(Some(resolved.account_id));
        row.access_hash = Set(Some(resolved.user.access_hash));
        if let Some(username) = resolved.user.username.as_deref() {
            row.username = Set(Username::parse(username).ok().map(String::from));
        }
        if resolved.user.first_name.is_some() {
            row.first_name = Set(resolved.user.first_name);
        }
    }
    row.updated_at = Set(now);
    row.update(db).await.doing("updating a tracked user")
}

/// Stops tracking; the history stays.
/// Sets (or clears) the account that polls the user.
pub async fn set_account(
    db: &DatabaseConnection,
    id: Uuid,
    account_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<tracked_users::Model, StorageError> {
    let row = tracked_users::Entity::find_by_id(id)
        .one(db)
        .await
        .doing("loading a tracked user")?
        .ok_or_else(|| StorageError::Corrupt(format!("tracked user {id} vanished")))?;
    let mut row = row.into_active_model();
    row.account_id = Set(account_id);
    row.updated_at = Set(now);
    row.update(db)
        .await
        .doing("changing a tracked user's account")
}

pub async fn deactivate(
    db: &DatabaseConnection,
    existing: tracked_users::Model,
    now: DateTime<Utc>,
) -> Result<tracked_users::Model, StorageError> {
    let mut row: tracked_users::ActiveModel = existing.into();
    row.is_active = Set(false);
    row.updated_at = Set(now);
    row.update(db).await.doing("stopping tracking")
}

/// Forgets the user with all observations and sessions (they cascade).
pub async fn purge(db: &DatabaseConnection, id: Uuid) -> Result<(), StorageError> {
    tracked_users::Entity::delete_by_id(id)
        .exec(db)
        .await
        .doing("purging a tracked user")?;
    Ok(())
}

/// Records where a tracked user comes from (`config` or `api`).
pub async fn set_source(
    db: &DatabaseConnection,
    id: Uuid,
    source: Origin,
) -> Result<(), StorageError> {
    tracked_users::Entity::update_many()
        .col_expr(
            tracked_users::Column::Source,
            sea_orm::prelude::Expr::value(source.as_str()),
        )
        .filter(tracked_users::Column::Id.eq(id))
        .exec(db)
        .await
        .doing("recording a tracked user's source")?;
    Ok(())
}
