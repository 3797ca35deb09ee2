//! `telegram_users`: the people who talk to the bot (seed 002 `TelegramUser`).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::telegram_users,
    page::{self, Order, Page},
};
use tgwatch_core::roles::Role;

#[derive(Debug, Default)]
pub struct TelegramUserFilter {
    pub role: Option<Role>,
    pub telegram_user_id: Option<i64>,
}

pub async fn list(
    db: &DatabaseConnection,
    filter: TelegramUserFilter,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<telegram_users::Model>, StorageError> {
    let mut select = telegram_users::Entity::find();
    if let Some(role) = filter.role {
        select = select.filter(telegram_users::Column::Role.eq(role.as_str()));
    }
    if let Some(id) = filter.telegram_user_id {
        select = select.filter(telegram_users::Column::TelegramUserId.eq(id));
    }
    page::fetch(
        db,
        select,
        telegram_users::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}

pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<telegram_users::Model>, StorageError> {
    telegram_users::Entity::find_by_id(id)
        .one(db)
        .await
        .doing("loading a telegram user")
}

pub async fn find(
    db: &DatabaseConnection,
    telegram_user_id: i64,
) -> Result<Option<telegram_users::Model>, StorageError> {
    telegram_users::Entity::find()
        .filter(telegram_users::Column::TelegramUserId.eq(telegram_user_id))
        .one(db)
        .await
        .doing("finding a telegram user")
}

pub struct NewTelegramUser {
    pub telegram_user_id: i64,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub role: Role,
    /// Already checked with `roles::normalize_permissions`.
    pub permissions: Vec<String>,
}

pub async fn create(
    db: &DatabaseConnection,
    new: NewTelegramUser,
    now: DateTime<Utc>,
) -> Result<telegram_users::Model, StorageError> {
    telegram_users::ActiveModel {
        id: Set(Uuid::now_v7()),
        telegram_user_id: Set(new.telegram_user_id),
        username: Set(new.username),
        first_name: Set(new.first_name),
        role: Set(new.role),
        permissions: Set(serde_json::json!(new.permissions).to_string()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .doing("creating a telegram user")
}

#[derive(Debug, Default)]
pub struct TelegramUserPatch {
    pub username: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub role: Option<Role>,
    pub permissions: Option<Vec<String>>,
}

pub async fn update(
    db: &DatabaseConnection,
    existing: telegram_users::Model,
    patch: TelegramUserPatch,
    now: DateTime<Utc>,
) -> Result<telegram_users::Model, StorageError> {
    let mut row: telegram_users::ActiveModel = existing.into();
    if let Some(username) = patch.username {
        row.username = Set(username);
    }
    if let Some(first_name) = patch.first_name {
        row.first_name = Set(first_name);
    }
    if let Some(role) = patch.role {
        row.role = Set(role);
    }
    if let Some(permissions) = patch.permissions {
        row.permissions = Set(serde_json::json!(permissions).to_string());
    }
    row.updated_at = Set(now);
    row.update(db).await.doing("updating a telegram user")
}

/// Forgets a person; the chats they registered (and those chats' choices) go with them.
pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), StorageError> {
    telegram_users::Entity::delete_by_id(id)
        .exec(db)
        .await
        .doing("deleting a telegram user")?;
    Ok(())
}

/// The permissions stored for a person (an unreadable value counts as none).
pub fn permissions(row: &telegram_users::Model) -> Vec<String> {
    serde_json::from_str(&row.permissions).unwrap_or_default()
}

/// Someone wrote to the bot: their row, created with `default_role` the first time, with the
/// names Telegram shows now. Safe against two instances meeting the same person at once.
pub async fn met(
    db: &DatabaseConnection,
    telegram_user_id: i64,
    username: Option<String>,
    first_name: Option<String>,
    default_role: Role,
    now: DateTime<Utc>,
) -> Result<telegram_users::Model, StorageError> {
    if let Some(existing) = find(db, telegram_user_id).await? {
        if existing.username == username && existing.first_name == first_name {
            return Ok(existing);
        }
        let patch = TelegramUserPatch {
            username: Some(username),
            first_name: Some(first_name),
            ..TelegramUserPatch::default()
        };
        return update(db, existing, patch, now).await;
    }
    let row = telegram_users::ActiveModel {
        id: Set(Uuid::now_v7()),
        telegram_user_id: Set(telegram_user_id),
        username: Set(username),
        first_name: Set(first_name),
        role: Set(default_role),
        permissions: Set("[]".to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    };
    telegram_users::Entity::insert(row)
        .on_conflict_do_nothing_on([telegram_users::Column::TelegramUserId])
        .exec_without_returning(db)
        .await
        .doing("recording a new telegram user")?;
    find(db, telegram_user_id)
        .await?
        .ok_or_else(|| StorageError::Corrupt(format!("telegram user {telegram_user_id} vanished")))
}
