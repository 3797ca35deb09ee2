//! `auth_attempts`: every login step tried, with its outcome and client address.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, prelude::Expr,
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::auth_attempts,
    page::{self, Order, Page},
};

pub use crate::entities::auth_attempts::AttemptKind;

impl AttemptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptKind::Phone => "phone",
            AttemptKind::TwoFactor => "2fa",
            AttemptKind::Qr => "qr",
        }
    }
}

pub use crate::entities::auth_attempts::AttemptStatus;

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Pending => "pending",
            AttemptStatus::Success => "success",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Timeout => "timeout",
        }
    }
}

pub async fn start(
    db: &DatabaseConnection,
    account_id: Uuid,
    kind: AttemptKind,
    client_addr: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Uuid, StorageError> {
    let id = Uuid::now_v7();
    auth_attempts::ActiveModel {
        id: Set(id),
        account_id: Set(account_id),
        kind: Set(kind),
        status: Set(AttemptStatus::Pending),
        error: Set(None),
        client_addr: Set(client_addr.map(str::to_owned)),
        created_at: Set(now),
        finished_at: Set(None),
    }
    .insert(db)
    .await
    .doing("recording a login attempt")?;
    Ok(id)
}

pub async fn finish(
    db: &DatabaseConnection,
    id: Uuid,
    status: AttemptStatus,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    auth_attempts::Entity::update_many()
        .col_expr(auth_attempts::Column::Status, Expr::value(status.as_str()))
        .col_expr(auth_attempts::Column::Error, Expr::value(error))
        .col_expr(auth_attempts::Column::FinishedAt, Expr::value(now))
        .filter(auth_attempts::Column::Id.eq(id))
        .exec(db)
        .await
        .doing("recording the outcome of a login attempt")?;
    Ok(())
}

/// When the failed code and password attempts since `since` happened, oldest first: of this
/// account, and of this client address (any account).
pub async fn recent_failures(
    db: &DatabaseConnection,
    account_id: Uuid,
    client_addr: Option<&str>,
    since: DateTime<Utc>,
) -> Result<(Vec<DateTime<Utc>>, Vec<DateTime<Utc>>), StorageError> {
    let failures = |scope: Condition| {
        auth_attempts::Entity::find()
            .select_only()
            .column(auth_attempts::Column::CreatedAt)
            .filter(scope)
            .filter(auth_attempts::Column::Status.eq(AttemptStatus::Failed.as_str()))
            .filter(
                auth_attempts::Column::Kind
                    .is_in([AttemptKind::Phone.as_str(), AttemptKind::TwoFactor.as_str()]),
            )
            .filter(auth_attempts::Column::CreatedAt.gte(since))
            .order_by_asc(auth_attempts::Column::CreatedAt)
            .into_tuple::<DateTime<Utc>>()
            .all(db)
    };
    let by_account =
        failures(Condition::all().add(auth_attempts::Column::AccountId.eq(account_id)))
            .await
            .doing("counting an account's failed logins")?;
    let by_client = match client_addr {
        Some(addr) => failures(Condition::all().add(auth_attempts::Column::ClientAddr.eq(addr)))
            .await
            .doing("counting a client's failed logins")?,
        None => Vec::new(),
    };
    Ok((by_account, by_client))
}

/// One page of the account's attempts, in creation order (ids are UUID v7).
pub async fn list(
    db: &DatabaseConnection,
    account_id: Uuid,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<auth_attempts::Model>, StorageError> {
    page::fetch(
        db,
        auth_attempts::Entity::find().filter(auth_attempts::Column::AccountId.eq(account_id)),
        auth_attempts::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}
