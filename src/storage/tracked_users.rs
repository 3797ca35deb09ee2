//! `tracked_users`: who the fleet watches (seed 002 TrackedUser, seed 000 target).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter,
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{online_sessions, tracked_users},
    page::{self, Order, Page},
};
use crate::telegram::{TelegramUser, Username};

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

/// Starts tracking a resolved user, or tracks again a user tracked before (keeping the history).
pub async fn track(
    db: &DatabaseConnection,
    existing: Option<tracked_users::Model>,
    resolved: Resolved,
    notify: bool,
    visible_online: bool,
    now: DateTime<Utc>,
) -> Result<tracked_users::Model, StorageError> {
    let user = resolved.user;
    let username = user
        .username
        .as_deref()
        .and_then(|name| Username::parse(name).ok())
        .map(String::from);
    let is_new = existing.is_none();
    let mut row = match existing {
        Some(existing) => existing.into(),
        None => tracked_users::ActiveModel {
            id: Set(Uuid::now_v7()),
            created_at: Set(now),
            ..Default::default()
        },
    };
    row.telegram_user_id = Set(Some(user.id));
    row.username = Set(username);
    row.first_name = Set(user.first_name);
    row.access_hash = Set(Some(user.access_hash));
    row.account_id = Set(Some(resolved.account_id));
    row.notify = Set(notify);
    row.visible_online = Set(visible_online);
    row.is_active = Set(true);
    row.updated_at = Set(now);
    if is_new {
        row.insert(db).await.doing("creating a tracked user")
    } else {
        row.update(db).await.doing("tracking a user again")
    }
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

pub struct TrackedUserPatch {
    pub notify: Option<bool>,
    pub visible_online: Option<bool>,
    /// A move to another account, with the user as that account resolved it.
    pub moved_to: Option<Resolved>,
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
    if let Some(moved) = patch.moved_to {
        row.account_id = Set(Some(moved.account_id));
        row.access_hash = Set(Some(moved.user.access_hash));
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
    source: &str,
) -> Result<(), StorageError> {
    tracked_users::Entity::update_many()
        .col_expr(
            tracked_users::Column::Source,
            sea_orm::prelude::Expr::value(source),
        )
        .filter(tracked_users::Column::Id.eq(id))
        .exec(db)
        .await
        .doing("recording a tracked user's source")?;
    Ok(())
}
