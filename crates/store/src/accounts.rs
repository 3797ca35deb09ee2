//! `accounts`: the Telegram accounts of the fleet (seed 001 Accounts + seed 002 TrackerAccount
//! and TrackerSetting).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, prelude::Expr,
};
use serde::Deserialize;
use tgwatch_core::config::Origin;
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{accounts, tracked_users},
    page::{self, Order, Page},
};

pub use tgwatch_core::assignment::AccountStatus;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    pub label: String,
    /// Seed 001 calls it `phone_number`; either name is taken.
    #[serde(alias = "phone_number")]
    pub phone: Option<String>,
    pub username: Option<String>,
    pub telegram_user_id: Option<i64>,
    pub api_id: Option<i32>,
    pub max_targets: Option<i32>,
    pub max_channels: Option<i32>,
    pub status: Option<AccountStatus>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    pub label: Option<String>,
    /// Seed 001 calls it `phone_number`; either name is taken.
    #[serde(alias = "phone_number")]
    pub phone: Option<String>,
    pub username: Option<String>,
    pub telegram_user_id: Option<i64>,
    pub api_id: Option<i32>,
    pub max_targets: Option<i32>,
    pub max_channels: Option<i32>,
    pub status: Option<AccountStatus>,
}

#[derive(Debug, Default)]
pub struct AccountFilter {
    pub status: Option<AccountStatus>,
    pub is_active: Option<bool>,
    pub is_authorized: Option<bool>,
    pub telegram_user_id: Option<i64>,
}

pub async fn create(
    db: &DatabaseConnection,
    new: NewAccount,
    now: DateTime<Utc>,
) -> Result<accounts::Model, StorageError> {
    let row = accounts::ActiveModel {
        id: Set(Uuid::now_v7()),
        label: Set(new.label),
        phone: Set(new.phone),
        username: Set(new.username),
        telegram_user_id: Set(new.telegram_user_id),
        api_id: Set(new.api_id),
        status: Set(new.status.unwrap_or(AccountStatus::Active)),
        is_authorized: Set(false),
        max_targets: Set(new.max_targets.unwrap_or(1000)),
        max_channels: Set(new.max_channels.unwrap_or(100)),
        targets_count: Set(0),
        channels_count: Set(0),
        last_active: Set(None),
        status_reason: Set(None),
        // `api` unless the configuration claims it (`set_source`).
        source: Set(Origin::Api),
        created_at: Set(now),
        updated_at: Set(now),
    };
    row.insert(db).await.doing("creating an account")
}

pub async fn get(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<accounts::Model>, StorageError> {
    accounts::Entity::find_by_id(id)
        .one(db)
        .await
        .doing("loading an account")
}

pub async fn find_by_label(
    db: &DatabaseConnection,
    label: &str,
) -> Result<Option<accounts::Model>, StorageError> {
    accounts::Entity::find()
        .filter(accounts::Column::Label.eq(label))
        .one(db)
        .await
        .doing("finding an account by label")
}

pub async fn find_by_telegram_user_id(
    db: &DatabaseConnection,
    telegram_user_id: i64,
) -> Result<Option<accounts::Model>, StorageError> {
    accounts::Entity::find()
        .filter(accounts::Column::TelegramUserId.eq(telegram_user_id))
        .one(db)
        .await
        .doing("finding an account by Telegram user id")
}

pub async fn all(db: &DatabaseConnection) -> Result<Vec<accounts::Model>, StorageError> {
    accounts::Entity::find()
        .all(db)
        .await
        .doing("loading accounts")
}

pub async fn list(
    db: &DatabaseConnection,
    filter: AccountFilter,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<accounts::Model>, StorageError> {
    let mut select = accounts::Entity::find();
    if let Some(status) = filter.status {
        select = select.filter(accounts::Column::Status.eq(status.as_str()));
    }
    match filter.is_active {
        Some(true) => select = select.filter(accounts::Column::Status.eq("active")),
        Some(false) => select = select.filter(accounts::Column::Status.ne("active")),
        None => {}
    }
    if let Some(is_authorized) = filter.is_authorized {
        select = select.filter(accounts::Column::IsAuthorized.eq(is_authorized));
    }
    if let Some(telegram_user_id) = filter.telegram_user_id {
        select = select.filter(accounts::Column::TelegramUserId.eq(telegram_user_id));
    }
    page::fetch(
        db,
        select,
        accounts::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}

pub async fn update(
    db: &DatabaseConnection,
    existing: accounts::Model,
    patch: AccountPatch,
    now: DateTime<Utc>,
) -> Result<accounts::Model, StorageError> {
    let mut row: accounts::ActiveModel = existing.into();
    if let Some(label) = patch.label {
        row.label = Set(label);
    }
    if let Some(phone) = patch.phone {
        row.phone = Set(Some(phone));
    }
    if let Some(username) = patch.username {
        row.username = Set(Some(username));
    }
    if let Some(telegram_user_id) = patch.telegram_user_id {
        row.telegram_user_id = Set(Some(telegram_user_id));
    }
    if let Some(api_id) = patch.api_id {
        row.api_id = Set(Some(api_id));
    }
    if let Some(max_targets) = patch.max_targets {
        row.max_targets = Set(max_targets);
    }
    if let Some(max_channels) = patch.max_channels {
        row.max_channels = Set(max_channels);
    }
    if let Some(status) = patch.status {
        row.status = Set(status);
        row.status_reason = Set(None);
    }
    row.updated_at = Set(now);
    row.update(db).await.doing("updating an account")
}

pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), StorageError> {
    accounts::Entity::delete_by_id(id)
        .exec(db)
        .await
        .doing("deleting an account")?;
    Ok(())
}

pub async fn set_status(
    db: &DatabaseConnection,
    id: Uuid,
    status: AccountStatus,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    accounts::Entity::update_many()
        .col_expr(accounts::Column::Status, Expr::value(status.as_str()))
        .col_expr(accounts::Column::StatusReason, Expr::value(reason))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(now))
        .filter(accounts::Column::Id.eq(id))
        .exec(db)
        .await
        .doing("recording an account status")?;
    Ok(())
}

pub async fn touch_last_active(
    db: &DatabaseConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    accounts::Entity::update_many()
        .col_expr(accounts::Column::LastActive, Expr::value(at))
        .filter(accounts::Column::Id.eq(id))
        .exec(db)
        .await
        .doing("recording account activity")?;
    Ok(())
}

/// Sets `targets_count` of one account from the tracked users actually assigned to it.
pub async fn refresh_targets_count(db: &DatabaseConnection, id: Uuid) -> Result<(), StorageError> {
    let count = tracked_users::Entity::find()
        .filter(tracked_users::Column::AccountId.eq(id))
        .filter(tracked_users::Column::IsActive.eq(true))
        .count(db)
        .await
        .doing("counting an account's targets")?;
    accounts::Entity::update_many()
        .col_expr(accounts::Column::TargetsCount, Expr::value(count as i32))
        .filter(accounts::Column::Id.eq(id))
        .exec(db)
        .await
        .doing("recording an account's target count")?;
    Ok(())
}

/// Sets `channels_count` of one account from the channels it actually watches.
pub async fn refresh_channels_count(db: &DatabaseConnection, id: Uuid) -> Result<(), StorageError> {
    let count = super::entities::channels::Entity::find()
        .filter(super::entities::channels::Column::AccountId.eq(id))
        .filter(super::entities::channels::Column::Status.eq("active"))
        .count(db)
        .await
        .doing("counting an account's channels")?;
    accounts::Entity::update_many()
        .col_expr(accounts::Column::ChannelsCount, Expr::value(count as i32))
        .filter(accounts::Column::Id.eq(id))
        .exec(db)
        .await
        .doing("recording an account's channel count")?;
    Ok(())
}

/// How many accounts are in each status.
pub async fn count_by_status(
    db: &DatabaseConnection,
) -> Result<std::collections::BTreeMap<String, u64>, StorageError> {
    let mut counts = std::collections::BTreeMap::new();
    for status in AccountStatus::ALL {
        let count = accounts::Entity::find()
            .filter(accounts::Column::Status.eq(status.as_str()))
            .count(db)
            .await
            .doing("counting accounts")?;
        counts.insert(status.as_str().to_owned(), count);
    }
    Ok(counts)
}

/// Records where an account comes from (`config` or `api`).
pub async fn set_source(
    db: &DatabaseConnection,
    id: Uuid,
    source: Origin,
) -> Result<(), StorageError> {
    accounts::Entity::update_many()
        .col_expr(accounts::Column::Source, Expr::value(source.as_str()))
        .filter(accounts::Column::Id.eq(id))
        .exec(db)
        .await
        .doing("recording an account's source")?;
    Ok(())
}

/// Forgets an account's phone number (seed 002's `DELETE /tracker-settings/{id}/`, with its
/// session: the account stays); `None` when the account was deleted meanwhile.
pub async fn clear_phone(
    db: &DatabaseConnection,
    existing: accounts::Model,
    now: DateTime<Utc>,
) -> Result<Option<accounts::Model>, StorageError> {
    let mut row: accounts::ActiveModel = existing.into();
    row.phone = Set(None);
    row.updated_at = Set(now);
    match row.update(db).await {
        Ok(updated) => Ok(Some(updated)),
        // Deleted meanwhile (by another request): nothing to clear.
        Err(sea_orm::DbErr::RecordNotUpdated) => Ok(None),
        Err(source) => Err(StorageError::Db {
            doing: "clearing an account's phone",
            source,
        }),
    }
}
