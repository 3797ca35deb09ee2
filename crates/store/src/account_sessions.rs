//! `account_sessions`: each account's Telegram session and secrets, sealed with the master key.
//!
//! Everything secret is sealed here, at the edge: callers hand in and get back plaintext, the
//! database only ever sees ciphertext. The associated data of each value names its column and
//! account, so values cannot be swapped between rows.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, IntoActiveModel, QueryFilter, QuerySelect, prelude::Expr,
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{account_sessions, accounts},
};
use tgwatch_core::vault::{Vault, VaultError};

/// One account's stored session, opened.
#[derive(Clone)]
pub struct StoredSessionRow {
    pub account_id: Uuid,
    /// The session as `telegram::stored_session` serialised it.
    pub session: Vec<u8>,
    pub api_hash: Option<String>,
    pub password_hint: Option<String>,
    pub telegram_user_id: Option<i64>,
    pub dc_id: i32,
    pub authorized_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for StoredSessionRow {
    /// No secrets in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSessionRow")
            .field("account_id", &self.account_id)
            .field("telegram_user_id", &self.telegram_user_id)
            .field("dc_id", &self.dc_id)
            .field("authorized_at", &self.authorized_at)
            .finish_non_exhaustive()
    }
}

fn context(column: &str, account_id: Uuid) -> String {
    format!("account_sessions.{column}:{account_id}")
}

fn vault_error(error: VaultError) -> StorageError {
    StorageError::Corrupt(error.to_string())
}

fn open_text(
    vault: &Vault,
    sealed: Option<&[u8]>,
    column: &str,
    account_id: Uuid,
) -> Result<Option<String>, StorageError> {
    sealed
        .map(|sealed| {
            let bytes = vault
                .open(sealed, &context(column, account_id))
                .map_err(vault_error)?;
            String::from_utf8(bytes)
                .map_err(|_| StorageError::Corrupt(format!("{column} is not UTF-8")))
        })
        .transpose()
}

pub async fn load(
    db: &impl ConnectionTrait,
    vault: &Vault,
    account_id: Uuid,
) -> Result<Option<StoredSessionRow>, StorageError> {
    let Some(row) = account_sessions::Entity::find_by_id(account_id)
        .one(db)
        .await
        .doing("loading an account session")?
    else {
        return Ok(None);
    };
    Ok(Some(StoredSessionRow {
        account_id,
        session: vault
            .open(&row.session, &context("session", account_id))
            .map_err(vault_error)?,
        api_hash: open_text(vault, row.api_hash.as_deref(), "api_hash", account_id)?,
        password_hint: open_text(
            vault,
            row.password_hint.as_deref(),
            "password_hint",
            account_id,
        )?,
        telegram_user_id: row.telegram_user_id,
        dc_id: row.dc_id,
        authorized_at: row.authorized_at,
        updated_at: row.updated_at,
    }))
}

/// The ids of the accounts that have a stored, logged-in session.
pub async fn authorized_account_ids(db: &DatabaseConnection) -> Result<Vec<Uuid>, StorageError> {
    account_sessions::Entity::find()
        .select_only()
        .column(account_sessions::Column::AccountId)
        .filter(account_sessions::Column::AuthorizedAt.is_not_null())
        .into_tuple()
        .all(db)
        .await
        .doing("listing the logged-in accounts")
}

/// Writes the session (creating the row if needed). Secrets already stored are kept.
pub async fn save_session(
    db: &impl ConnectionTrait,
    vault: &Vault,
    account_id: Uuid,
    session: &[u8],
    dc_id: i32,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let sealed = vault
        .seal(session, &context("session", account_id))
        .map_err(vault_error)?;
    let updated = account_sessions::Entity::update_many()
        .col_expr(
            account_sessions::Column::Session,
            Expr::value(sealed.clone()),
        )
        .col_expr(account_sessions::Column::DcId, Expr::value(dc_id))
        .col_expr(account_sessions::Column::UpdatedAt, Expr::value(now))
        .filter(account_sessions::Column::AccountId.eq(account_id))
        .exec(db)
        .await
        .doing("saving an account session")?;
    if updated.rows_affected == 0 {
        account_sessions::ActiveModel {
            account_id: Set(account_id),
            session: Set(sealed),
            api_hash: Set(None),
            password_hint: Set(None),
            telegram_user_id: Set(None),
            dc_id: Set(dc_id),
            authorized_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(db)
        .await
        .doing("creating an account session")?;
    }
    Ok(())
}

/// Stores the api_hash and the 2FA hint of a login in progress (the session row must exist).
pub async fn save_secrets(
    db: &impl ConnectionTrait,
    vault: &Vault,
    account_id: Uuid,
    api_hash: Option<&str>,
    password_hint: Option<&str>,
) -> Result<(), StorageError> {
    let mut update = account_sessions::Entity::update_many();
    if let Some(api_hash) = api_hash {
        let sealed = vault
            .seal(api_hash.as_bytes(), &context("api_hash", account_id))
            .map_err(vault_error)?;
        update = update.col_expr(account_sessions::Column::ApiHash, Expr::value(sealed));
    }
    if let Some(hint) = password_hint {
        let sealed = vault
            .seal(hint.as_bytes(), &context("password_hint", account_id))
            .map_err(vault_error)?;
        update = update.col_expr(account_sessions::Column::PasswordHint, Expr::value(sealed));
    }
    update
        .filter(account_sessions::Column::AccountId.eq(account_id))
        .exec(db)
        .await
        .doing("saving an account's api_hash")?;
    Ok(())
}

/// Marks the session logged in, and the account authorized as `telegram_user_id`.
pub async fn mark_authorized(
    db: &DatabaseConnection,
    account_id: Uuid,
    telegram_user_id: i64,
    username: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting to record a login").await?;
    account_sessions::Entity::update_many()
        .col_expr(
            account_sessions::Column::TelegramUserId,
            Expr::value(telegram_user_id),
        )
        .col_expr(account_sessions::Column::AuthorizedAt, Expr::value(now))
        .filter(account_sessions::Column::AccountId.eq(account_id))
        .exec(&txn)
        .await
        .doing("marking a session logged in")?;
    // A logged-in account is ready for work again (it sat inactive while not logged in).
    let mut update = accounts::Entity::update_many()
        .col_expr(accounts::Column::IsAuthorized, Expr::value(true))
        .col_expr(accounts::Column::Status, Expr::value("active"))
        .col_expr(
            accounts::Column::StatusReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            accounts::Column::TelegramUserId,
            Expr::value(telegram_user_id),
        )
        .col_expr(accounts::Column::UpdatedAt, Expr::value(now));
    if let Some(username) = username {
        update = update.col_expr(accounts::Column::Username, Expr::value(username));
    }
    {
        update
            .filter(accounts::Column::Id.eq(account_id))
            .exec(&txn)
            .await
            .doing("marking an account authorized")?;
    }
    txn.commit().await.doing("committing a login")
}

/// Forgets the session (a reset, or a login started over): the account must log in again.
pub async fn delete(
    db: &DatabaseConnection,
    account_id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let txn = super::begin_write(db, "starting a session reset").await?;
    let deleted = account_sessions::Entity::delete_by_id(account_id)
        .exec(&txn)
        .await
        .doing("deleting an account session")?;
    accounts::Entity::update_many()
        .col_expr(accounts::Column::IsAuthorized, Expr::value(false))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(now))
        .filter(accounts::Column::Id.eq(account_id))
        .exec(&txn)
        .await
        .doing("marking an account logged out")?;
    txn.commit().await.doing("committing a session reset")?;
    Ok(deleted.rows_affected > 0)
}

/// Re-seals every stored secret with `new`'s current key, in one transaction: either all rows
/// move to the new key or none does. Returns how many rows were re-sealed.
pub async fn reseal_all(
    db: &DatabaseConnection,
    old: &Vault,
    new: &Vault,
) -> Result<usize, StorageError> {
    let txn = super::begin_write(db, "starting a key rotation").await?;
    let rows = account_sessions::Entity::find()
        .all(&txn)
        .await
        .doing("reading sessions to re-seal")?;
    let mut resealed = 0;
    for row in rows {
        let id = row.account_id;
        let reseal = |sealed: &[u8], column: &str| -> Result<Vec<u8>, StorageError> {
            let plain = old
                .open(sealed, &context(column, id))
                .or_else(|_| new.open(sealed, &context(column, id)))
                .map_err(vault_error)?;
            new.seal(&plain, &context(column, id)).map_err(vault_error)
        };
        let session = reseal(&row.session, "session")?;
        let api_hash = row
            .api_hash
            .as_deref()
            .map(|value| reseal(value, "api_hash"))
            .transpose()?;
        let password_hint = row
            .password_hint
            .as_deref()
            .map(|value| reseal(value, "password_hint"))
            .transpose()?;
        let mut active = row.into_active_model();
        active.session = Set(session);
        active.api_hash = Set(api_hash);
        active.password_hint = Set(password_hint);
        active
            .update(&txn)
            .await
            .doing("re-sealing an account session")?;
        resealed += 1;
    }
    txn.commit().await.doing("committing a key rotation")?;
    Ok(resealed)
}
