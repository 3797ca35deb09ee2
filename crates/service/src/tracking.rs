//! The operations that change what the fleet does. The HTTP API and the config file both go
//! through here, so they share every check.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::actors::{
    messages::{
        LookUpUser, Lookup, ResolveError, StartAccount, StartTarget, StopAccount, StopTarget,
    },
    supervisor::FleetSupervisor,
};
use tgwatch_core::assignment;
use tgwatch_core::config::Origin;
use tgwatch_store::{
    self as storage, StorageError,
    accounts::{AccountPatch, NewAccount},
    entities::{accounts, tracked_users},
    tracked_users::{Resolved, TrackFlags, Tracked, TrackedUserPatch},
};
use tgwatch_telegram::{InputUser, Username};

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error("{0} is already tracked")]
    AlreadyTracked(Box<tracked_users::Model>),
    #[error("account {0} does not exist")]
    UnknownAccount(Uuid),
    #[error("account `{0}` cannot take work: it is {1}")]
    AccountUnusable(String, String),
    #[error("no account can take another tracked user: {0}")]
    NoAccountAvailable(String),
    #[error("`label`: an account labelled `{}` exists already", .0.label)]
    DuplicateLabel(Box<accounts::Model>),
    #[error(
        "`telegram_user_id`: account `{}` is already Telegram user {}",
        .0.label,
        .0.telegram_user_id.unwrap_or_default()
    )]
    DuplicateTelegramUserId(Box<accounts::Model>),
    #[error("give a username or a telegram_user_id")]
    NothingToTrack,
    #[error("`{field}`: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<assignment::Refusal> for TrackingError {
    fn from(refusal: assignment::Refusal) -> Self {
        match refusal {
            assignment::Refusal::Unknown(id) => TrackingError::UnknownAccount(id),
            assignment::Refusal::Unusable { label, status } => {
                TrackingError::AccountUnusable(label, status)
            }
            assignment::Refusal::NoneAvailable(why) => TrackingError::NoAccountAvailable(why),
        }
    }
}

/// What to track, as the API and the config file give it.
pub struct TrackRequest {
    pub username: Option<Username>,
    pub telegram_user_id: Option<i64>,
    pub access_hash: Option<i64>,
    pub account_id: Option<Uuid>,
    /// None keeps what a user tracked before had (false for a new one).
    pub notify: Option<bool>,
    /// None keeps what a user tracked before had (true for a new one).
    pub visible_online: Option<bool>,
    /// Who owns the row from now on (`api` or `config`): tracking a user again claims it.
    pub source: Origin,
}

/// What `PATCH /api/tracked-users/{id}` changes; `None` leaves a field as it is.
#[derive(Default)]
pub struct TrackedUserChange {
    pub notify: Option<bool>,
    pub visible_online: Option<bool>,
    /// Moves the user to this account.
    pub account_id: Option<Uuid>,
    /// The person's new username (resolved again).
    pub username: Option<Username>,
}

/// How long `POST /api/accounts` waits for a new account's first connection, so that it answers
/// the status the account really has (a new account over MTProto is not logged in yet).
const ACCOUNT_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);
const ACCOUNT_SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Telegram's user ids and API ids are positive 53-bit numbers.
const MAX_TELEGRAM_ID: i64 = (1 << 53) - 1;
/// A bound on `max_targets` / `max_channels` far above what one account can do.
const MAX_CAPACITY: i32 = 1_000_000;

#[derive(Clone)]
pub struct Tracking {
    pub db: DatabaseConnection,
    pub supervisor: Addr<FleetSupervisor>,
}

impl Tracking {
    /// Starts tracking a user: picks the account, resolves the user through it (once), stores the
    /// user and starts its actor. Tracking a user again keeps the earlier history.
    pub async fn track(
        &self,
        request: TrackRequest,
        now: DateTime<Utc>,
    ) -> Result<tracked_users::Model, TrackingError> {
        let lookup = match (&request.username, request.telegram_user_id) {
            (Some(username), _) => Lookup::Username(username.clone()),
            (None, Some(id)) => Lookup::User(InputUser {
                id,
                access_hash: request.access_hash.unwrap_or(0),
            }),
            (None, None) => return Err(TrackingError::NothingToTrack),
        };
        let existing = storage::tracked_users::find_existing(
            &self.db,
            request.username.as_ref(),
            request.telegram_user_id,
        )
        .await?;
        if let Some(existing) = &existing
            && existing.is_active
        {
            return Err(TrackingError::AlreadyTracked(Box::new(existing.clone())));
        }
        let account = self.choose_account(request.account_id).await?;
        let user = self
            .supervisor
            .send(LookUpUser {
                lookup,
                account_id: account.id,
            })
            .await
            .map_err(ResolveError::from)??;
        // The Telegram id says who the user is: they may be tracked under another name, and a
        // row found by a username that now names someone else is not theirs.
        let existing =
            match storage::tracked_users::find_existing(&self.db, None, Some(user.id)).await? {
                Some(row) => Some(row),
                None => existing.filter(|row| row.telegram_user_id.is_none_or(|id| id == user.id)),
            };
        if let Some(existing) = &existing
            && existing.is_active
        {
            return Err(TrackingError::AlreadyTracked(Box::new(existing.clone())));
        }
        let resolved = Resolved {
            account_id: account.id,
            user,
        };
        let lookup_id = resolved.user.id;
        let flags = TrackFlags {
            notify: request.notify,
            visible_online: request.visible_online,
            source: request.source,
        };
        let tracked =
            match storage::tracked_users::track(&self.db, existing, resolved, flags, now).await {
                Ok(Tracked::Now(tracked)) => tracked,
                // Another request tracked the same user meanwhile.
                Ok(Tracked::Already(existing)) => {
                    return Err(TrackingError::AlreadyTracked(Box::new(existing)));
                }
                Err(error) if error.unique_violation().is_some() => {
                    let existing =
                        storage::tracked_users::find_existing(&self.db, None, Some(lookup_id))
                            .await?
                            .ok_or(error)?;
                    return Err(TrackingError::AlreadyTracked(Box::new(existing)));
                }
                Err(error) => return Err(error.into()),
            };
        storage::accounts::refresh_targets_count(&self.db, account.id).await?;
        self.supervisor.do_send(StartTarget(tracked.clone()));
        Ok(tracked)
    }

    /// Moves the active tracked users of a lost account to the least-loaded usable accounts
    /// (resolved again there: access hashes belong to the account that got them). A user no
    /// account can take loses its account and waits for [`Tracking::adopt_orphans`].
    pub async fn reassign_from(&self, lost: Uuid, now: DateTime<Utc>) -> Result<(), TrackingError> {
        for user in storage::tracked_users::active(&self.db).await? {
            if user.account_id != Some(lost) {
                continue;
            }
            let moved = match self.least_loaded(&[lost]).await {
                Ok(account) => self
                    .update(
                        user.clone(),
                        TrackedUserChange {
                            account_id: Some(account.id),
                            ..TrackedUserChange::default()
                        },
                        now,
                    )
                    .await
                    .map(|_| ()),
                Err(error) => Err(error),
            };
            if let Err(error) = moved {
                tracing::warn!(tracked_user = %user, %error, "tracked user waits for an account");
                let orphan =
                    storage::tracked_users::set_account(&self.db, user.id, None, now).await?;
                self.supervisor.do_send(StartTarget(orphan));
            }
        }
        storage::accounts::refresh_targets_count(&self.db, lost).await?;
        Ok(())
    }

    /// Gives the active tracked users without an account to the least-loaded usable accounts.
    pub async fn adopt_orphans(&self, now: DateTime<Utc>) -> Result<(), TrackingError> {
        for user in storage::tracked_users::active(&self.db).await? {
            if user.account_id.is_some() {
                continue;
            }
            let Ok(account) = self.least_loaded(&[]).await else {
                return Ok(());
            };
            if let Err(error) = self
                .update(
                    user.clone(),
                    TrackedUserChange {
                        account_id: Some(account.id),
                        ..TrackedUserChange::default()
                    },
                    now,
                )
                .await
            {
                tracing::warn!(tracked_user = %user, %error, "tracked user still waits for an account");
            }
        }
        Ok(())
    }

    /// The given account if it can take work, else the least-loaded one that can.
    async fn choose_account(&self, wanted: Option<Uuid>) -> Result<accounts::Model, TrackingError> {
        self.choose(wanted, &[]).await
    }

    /// The least-loaded usable account with room, never one of `excluded`.
    async fn least_loaded(&self, excluded: &[Uuid]) -> Result<accounts::Model, TrackingError> {
        self.choose(None, excluded).await
    }

    /// [`assignment::choose`] over the stored accounts, by tracked users (`max_targets`).
    async fn choose(
        &self,
        wanted: Option<Uuid>,
        excluded: &[Uuid],
    ) -> Result<accounts::Model, TrackingError> {
        let accounts = storage::accounts::all(&self.db).await?;
        let loads: Vec<assignment::Account> = accounts
            .iter()
            .map(|account| assignment::Account {
                id: account.id,
                label: &account.label,
                status: account.status,
                status_reason: account.status_reason.as_deref(),
                load: account.targets_count,
                capacity: account.max_targets,
            })
            .collect();
        let chosen = assignment::choose(&loads, wanted, excluded, "max_targets")
            .map_err(TrackingError::from)?;
        accounts
            .into_iter()
            .find(|account| account.id == chosen)
            .ok_or(TrackingError::UnknownAccount(chosen))
    }

    /// Changes flags, moves the user to another account, or follows a new `username` of the
    /// same person (resolved again through the account: access hashes belong to the account that
    /// obtained them). A username that belongs to someone else is refused: the history is this
    /// person's.
    pub async fn update(
        &self,
        existing: tracked_users::Model,
        change: TrackedUserChange,
        now: DateTime<Utc>,
    ) -> Result<tracked_users::Model, TrackingError> {
        let TrackedUserChange {
            notify,
            visible_online,
            account_id,
            username,
        } = change;
        let previous_account = existing.account_id;
        let moving_to = account_id.filter(|id| Some(*id) != previous_account);
        let renamed = username.filter(|name| existing.username.as_deref() != Some(name.as_str()));
        let moved_to = if moving_to.is_some() || renamed.is_some() {
            let account_id = match (moving_to, previous_account) {
                (Some(id), _) => self.choose_account(Some(id)).await?.id,
                (None, Some(id)) => id,
                (None, None) => self.choose_account(None).await?.id,
            };
            let lookup = match (
                renamed.clone(),
                &existing.username,
                existing.telegram_user_id,
            ) {
                (Some(username), _, _) => Lookup::Username(username),
                (None, Some(username), _) => {
                    Lookup::Username(Username::parse(username).map_err(|_| {
                        StorageError::Corrupt(format!("stored username `{username}`"))
                    })?)
                }
                (None, None, Some(id)) => Lookup::User(InputUser {
                    id,
                    access_hash: existing.access_hash.unwrap_or(0),
                }),
                (None, None, None) => return Err(TrackingError::NothingToTrack),
            };
            let user = self
                .supervisor
                .send(LookUpUser { lookup, account_id })
                .await
                .map_err(ResolveError::from)??;
            if let (Some(name), Some(id)) = (&renamed, existing.telegram_user_id)
                && user.id != id
            {
                return Err(TrackingError::Invalid {
                    field: "username",
                    message: format!(
                        "{name} is another Telegram user ({}), not this one ({id}): track them with POST",
                        user.id
                    ),
                });
            }
            Some(Resolved { account_id, user })
        } else {
            None
        };
        let resolved_again = moved_to.is_some();
        let patch = TrackedUserPatch {
            notify,
            visible_online,
            resolved: moved_to,
        };
        let updated = storage::tracked_users::update(&self.db, existing, patch, now).await?;
        if resolved_again {
            for account in [previous_account, updated.account_id].into_iter().flatten() {
                storage::accounts::refresh_targets_count(&self.db, account).await?;
            }
            self.supervisor.do_send(StartTarget(updated.clone()));
        }
        Ok(updated)
    }

    /// Stops tracking. The history stays unless `purge`.
    pub async fn untrack(
        &self,
        existing: tracked_users::Model,
        purge: bool,
        now: DateTime<Utc>,
    ) -> Result<(), TrackingError> {
        self.supervisor.do_send(StopTarget(existing.id));
        let account_id = existing.account_id;
        if purge {
            storage::tracked_users::purge(&self.db, existing.id).await?;
        } else {
            storage::tracked_users::deactivate(&self.db, existing, now).await?;
        }
        if let Some(account_id) = account_id {
            storage::accounts::refresh_targets_count(&self.db, account_id).await?;
        }
        Ok(())
    }

    pub async fn add_account(
        &self,
        new: NewAccount,
        now: DateTime<Utc>,
    ) -> Result<accounts::Model, TrackingError> {
        validate_limits(new.max_targets, new.max_channels)?;
        validate_label(&new.label)?;
        validate_identity(
            new.phone.as_deref(),
            new.username.as_deref(),
            new.telegram_user_id,
            new.api_id,
        )?;
        if let Some(existing) = storage::accounts::find_by_label(&self.db, &new.label).await? {
            return Err(TrackingError::DuplicateLabel(Box::new(existing)));
        }
        self.unused_telegram_user_id(new.telegram_user_id, None)
            .await?;
        let label = new.label.clone();
        let account = match storage::accounts::create(&self.db, new, now).await {
            Ok(account) => account,
            Err(error) => return Err(self.label_conflict(error, Some(&label)).await),
        };
        self.supervisor.do_send(StartAccount(account.clone()));
        self.settled(account).await
    }

    /// The account once its actor has tried to connect: `active` when connected, else what the
    /// actor found (`inactive` when it is not logged in). Gives up after [`ACCOUNT_SETTLE`] and
    /// answers the row as it is then.
    async fn settled(&self, account: accounts::Model) -> Result<accounts::Model, TrackingError> {
        if !account.status.is_usable() {
            return Ok(account);
        }
        let deadline = tokio::time::Instant::now() + ACCOUNT_SETTLE;
        loop {
            let row = storage::accounts::get(&self.db, account.id)
                .await?
                .unwrap_or_else(|| account.clone());
            let connected =
                crate::actors::supervisor::account_session(&self.supervisor, account.id)
                    .await
                    .is_ok();
            if connected || !row.status.is_usable() || tokio::time::Instant::now() >= deadline {
                return Ok(row);
            }
            tokio::time::sleep(ACCOUNT_SETTLE_POLL).await;
        }
    }

    /// A failed write of an account: when another request took `label` between the check and
    /// the write, the account that holds it now.
    async fn label_conflict(&self, error: StorageError, label: Option<&str>) -> TrackingError {
        let Some(label) = label.filter(|_| {
            error
                .unique_violation()
                .is_some_and(|violation| violation.is("accounts", "label"))
        }) else {
            return error.into();
        };
        match storage::accounts::find_by_label(&self.db, label).await {
            Ok(Some(holder)) => TrackingError::DuplicateLabel(Box::new(holder)),
            Ok(None) => error.into(),
            Err(lookup) => lookup.into(),
        }
    }

    /// Refuses a Telegram user id another account (not `except`) already has.
    async fn unused_telegram_user_id(
        &self,
        telegram_user_id: Option<i64>,
        except: Option<Uuid>,
    ) -> Result<(), TrackingError> {
        let Some(telegram_user_id) = telegram_user_id else {
            return Ok(());
        };
        match storage::accounts::find_by_telegram_user_id(&self.db, telegram_user_id).await? {
            Some(existing) if Some(existing.id) != except => {
                Err(TrackingError::DuplicateTelegramUserId(Box::new(existing)))
            }
            _ => Ok(()),
        }
    }

    pub async fn update_account(
        &self,
        existing: accounts::Model,
        patch: AccountPatch,
        now: DateTime<Utc>,
    ) -> Result<accounts::Model, TrackingError> {
        validate_limits(patch.max_targets, patch.max_channels)?;
        if let Some(label) = &patch.label {
            validate_label(label)?;
        }
        validate_identity(
            patch.phone.as_deref(),
            patch.username.as_deref(),
            patch.telegram_user_id,
            patch.api_id,
        )?;
        if let Some(label) = &patch.label
            && *label != existing.label
            && let Some(holder) = storage::accounts::find_by_label(&self.db, label).await?
        {
            return Err(TrackingError::DuplicateLabel(Box::new(holder)));
        }
        self.unused_telegram_user_id(patch.telegram_user_id, Some(existing.id))
            .await?;
        let restart = patch.status.is_some() || patch.phone.is_some() || patch.label.is_some();
        let label = patch.label.clone();
        let updated = match storage::accounts::update(&self.db, existing, patch, now).await {
            Ok(updated) => updated,
            Err(error) => return Err(self.label_conflict(error, label.as_deref()).await),
        };
        if restart {
            self.supervisor.do_send(StartAccount(updated.clone()));
            self.restart_targets_of(updated.id).await?;
        }
        Ok(updated)
    }

    /// Removes an account. Its tracked users lose their account (the FK sets it to null) and
    /// stop being polled until moved to another account.
    pub async fn remove_account(&self, existing: accounts::Model) -> Result<(), TrackingError> {
        self.supervisor.do_send(StopAccount(existing.id));
        let orphans: Vec<tracked_users::Model> = storage::tracked_users::active(&self.db)
            .await?
            .into_iter()
            .filter(|user| user.account_id == Some(existing.id))
            .collect();
        storage::accounts::delete(&self.db, existing.id).await?;
        for mut orphan in orphans {
            orphan.account_id = None;
            self.supervisor.do_send(StartTarget(orphan));
        }
        Ok(())
    }

    /// Restarts an account's actor (after a login or a session reset) and points its targets
    /// at the new one.
    pub async fn restart_account(&self, account_id: Uuid) -> Result<(), StorageError> {
        if let Some(account) = storage::accounts::get(&self.db, account_id).await? {
            self.supervisor.do_send(StartAccount(account));
            self.restart_targets_of(account_id).await?;
        }
        Ok(())
    }

    /// Targets hold their account's address: give them the new one after a restart.
    async fn restart_targets_of(&self, account_id: Uuid) -> Result<(), StorageError> {
        for user in storage::tracked_users::active(&self.db).await? {
            if user.account_id == Some(account_id) {
                self.supervisor.do_send(StartTarget(user));
            }
        }
        Ok(())
    }

    /// Starts (or restarts) the actor of every active tracked user.
    pub async fn start_targets(&self) -> Result<(), TrackingError> {
        for user in storage::tracked_users::active(&self.db).await? {
            self.supervisor.do_send(StartTarget(user));
        }
        Ok(())
    }
}

fn validate_label(label: &str) -> Result<(), TrackingError> {
    if label.trim().is_empty() || label.len() > 64 {
        return Err(TrackingError::Invalid {
            field: "label",
            message: "must be 1 to 64 characters".into(),
        });
    }
    Ok(())
}

fn validate_limits(
    max_targets: Option<i32>,
    max_channels: Option<i32>,
) -> Result<(), TrackingError> {
    for (field, value) in [("max_targets", max_targets), ("max_channels", max_channels)] {
        if value.is_some_and(|value| !(0..=MAX_CAPACITY).contains(&value)) {
            return Err(TrackingError::Invalid {
                field,
                message: format!("must be between 0 and {MAX_CAPACITY}"),
            });
        }
    }
    Ok(())
}

/// A phone number as Telegram takes it: international format, an optional `+` and 7 to 15
/// digits (E.164 allows at most 15).
pub fn validate_phone(phone: &str) -> Result<(), TrackingError> {
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if !(7..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TrackingError::Invalid {
            field: "phone",
            message: "must be a phone number in international format: an optional + and 7 to 15 digits, e.g. +15551234567".into(),
        });
    }
    Ok(())
}

/// The fields of an account that name it on Telegram, bounded by what Telegram produces.
fn validate_identity(
    phone: Option<&str>,
    username: Option<&str>,
    telegram_user_id: Option<i64>,
    api_id: Option<i32>,
) -> Result<(), TrackingError> {
    if let Some(phone) = phone {
        validate_phone(phone)?;
    }
    if let Some(username) = username
        && let Err(error) = Username::parse(username)
    {
        return Err(TrackingError::Invalid {
            field: "username",
            message: error.to_string(),
        });
    }
    if telegram_user_id.is_some_and(|id| !(1..=MAX_TELEGRAM_ID).contains(&id)) {
        return Err(TrackingError::Invalid {
            field: "telegram_user_id",
            message: format!("must be a Telegram user id: 1 to {MAX_TELEGRAM_ID}"),
        });
    }
    if api_id.is_some_and(|id| id <= 0) {
        return Err(TrackingError::Invalid {
            field: "api_id",
            message: "must be a positive number (from my.telegram.org)".into(),
        });
    }
    Ok(())
}

#[async_trait::async_trait]
impl tgwatch_telegram::logins::AccountRestarter for Tracking {
    async fn restart_account(&self, account_id: Uuid) -> Result<(), StorageError> {
        Tracking::restart_account(self, account_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_fields_are_bounded_by_what_telegram_produces() {
        assert!(validate_phone("+15551234567").is_ok());
        assert!(validate_phone("9996612345").is_ok());
        for bad in [
            "hello",
            "+",
            "+1555",
            "+1234567890123456",
            "+1 555 123 4567",
            "",
        ] {
            let error = validate_phone(bad).unwrap_err().to_string();
            assert!(
                error.starts_with("`phone`: ") && error.contains("7 to 15 digits"),
                "{bad}: {error}"
            );
        }
        assert!(validate_phone(&"1".repeat(60_000)).is_err());
        assert!(validate_identity(None, Some("watcher_bot"), Some(42), Some(1)).is_ok());
        for (field, error) in [
            (
                "username",
                validate_identity(None, Some("no spaces"), None, None),
            ),
            (
                "telegram_user_id",
                validate_identity(None, None, Some(0), None),
            ),
            (
                "telegram_user_id",
                validate_identity(None, None, Some(i64::MAX), None),
            ),
            ("api_id", validate_identity(None, None, None, Some(-1))),
        ] {
            match error {
                Err(TrackingError::Invalid { field: named, .. }) => assert_eq!(named, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(validate_limits(Some(MAX_CAPACITY), Some(0)).is_ok());
        assert!(validate_limits(Some(MAX_CAPACITY + 1), None).is_err());
        assert!(validate_limits(None, Some(-1)).is_err());
    }
}
