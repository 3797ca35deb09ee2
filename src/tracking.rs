//! The operations that change what the fleet does. The HTTP API and the config file both go
//! through here, so they share every check.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::{
    actors::{
        messages::{
            LookUpUser, Lookup, ResolveError, StartAccount, StartTarget, StopAccount, StopTarget,
        },
        supervisor::FleetSupervisor,
    },
    assignment::{Candidate, least_loaded, why_no_account},
    storage::{
        self, StorageError,
        accounts::{AccountPatch, AccountStatus, NewAccount},
        entities::{accounts, tracked_users},
        tracked_users::{Resolved, TrackedUserPatch},
    },
    telegram::{InputUser, Username},
};

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
    #[error("an account labelled `{0}` exists already")]
    DuplicateLabel(String),
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

impl std::fmt::Display for tracked_users::Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.username, self.telegram_user_id) {
            (Some(username), _) => write!(f, "@{username}"),
            (None, Some(id)) => write!(f, "user {id}"),
            (None, None) => write!(f, "tracked user {}", self.id),
        }
    }
}

/// What to track, as the API and the config file give it.
pub struct TrackRequest {
    pub username: Option<Username>,
    pub telegram_user_id: Option<i64>,
    pub access_hash: Option<i64>,
    pub account_id: Option<Uuid>,
    pub notify: bool,
    pub visible_online: bool,
}

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
        // The username may have led to a user tracked under another name or by id.
        let existing = match existing {
            Some(existing) => Some(existing),
            None => storage::tracked_users::find_existing(&self.db, None, Some(user.id)).await?,
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
        let tracked = storage::tracked_users::track(
            &self.db,
            existing,
            resolved,
            request.notify,
            request.visible_online,
            now,
        )
        .await?;
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
                    .update(user.clone(), None, None, Some(account.id), now)
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
                .update(user.clone(), None, None, Some(account.id), now)
                .await
            {
                tracing::warn!(tracked_user = %user, %error, "tracked user still waits for an account");
            }
        }
        Ok(())
    }

    /// The given account if it can take work, else the least-loaded one that can.
    async fn choose_account(&self, wanted: Option<Uuid>) -> Result<accounts::Model, TrackingError> {
        if let Some(id) = wanted {
            let account = storage::accounts::get(&self.db, id)
                .await?
                .ok_or(TrackingError::UnknownAccount(id))?;
            if !AccountStatus::is_usable(&account.status) {
                return Err(TrackingError::AccountUnusable(
                    account.label,
                    account.status,
                ));
            }
            return Ok(account);
        }
        self.least_loaded(&[]).await
    }

    /// The least-loaded usable account with room, never one of `excluded`.
    async fn least_loaded(&self, excluded: &[Uuid]) -> Result<accounts::Model, TrackingError> {
        let accounts = storage::accounts::all(&self.db).await?;
        let candidates: Vec<Candidate> = accounts
            .iter()
            .map(|account| Candidate {
                account_id: account.id,
                load: account.targets_count,
                capacity: account.max_targets,
                usable: AccountStatus::is_usable(&account.status)
                    && !excluded.contains(&account.id),
            })
            .collect();
        let no_account = || {
            TrackingError::NoAccountAvailable(why_no_account(
                &accounts,
                |account| account.targets_count >= account.max_targets,
                "max_targets",
            ))
        };
        let chosen = least_loaded(&candidates).ok_or_else(no_account)?;
        accounts
            .iter()
            .find(|account| account.id == chosen)
            .cloned()
            .ok_or_else(no_account)
    }

    /// Changes flags, or moves the user to another account (resolved again through it: access
    /// hashes belong to the account that obtained them).
    pub async fn update(
        &self,
        existing: tracked_users::Model,
        notify: Option<bool>,
        visible_online: Option<bool>,
        account_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<tracked_users::Model, TrackingError> {
        let previous_account = existing.account_id;
        let moved_to = match account_id {
            Some(id) if Some(id) != previous_account => {
                let account = self.choose_account(Some(id)).await?;
                let lookup = match (&existing.username, existing.telegram_user_id) {
                    (Some(username), _) => {
                        Lookup::Username(Username::parse(username).map_err(|_| {
                            StorageError::Corrupt(format!("stored username `{username}`"))
                        })?)
                    }
                    (None, Some(id)) => Lookup::User(InputUser {
                        id,
                        access_hash: existing.access_hash.unwrap_or(0),
                    }),
                    (None, None) => return Err(TrackingError::NothingToTrack),
                };
                let user = self
                    .supervisor
                    .send(LookUpUser {
                        lookup,
                        account_id: account.id,
                    })
                    .await
                    .map_err(ResolveError::from)??;
                Some(Resolved {
                    account_id: account.id,
                    user,
                })
            }
            _ => None,
        };
        let moved = moved_to.is_some();
        let patch = TrackedUserPatch {
            notify,
            visible_online,
            moved_to,
        };
        let updated = storage::tracked_users::update(&self.db, existing, patch, now).await?;
        if moved {
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
        if storage::accounts::find_by_label(&self.db, &new.label)
            .await?
            .is_some()
        {
            return Err(TrackingError::DuplicateLabel(new.label));
        }
        let account = storage::accounts::create(&self.db, new, now).await?;
        self.supervisor.do_send(StartAccount(account.clone()));
        Ok(account)
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
        if let Some(label) = &patch.label
            && *label != existing.label
            && storage::accounts::find_by_label(&self.db, label)
                .await?
                .is_some()
        {
            return Err(TrackingError::DuplicateLabel(label.clone()));
        }
        let restart = patch.status.is_some() || patch.phone.is_some() || patch.label.is_some();
        let updated = storage::accounts::update(&self.db, existing, patch, now).await?;
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
    pub async fn restart_account(&self, account_id: Uuid) -> Result<(), TrackingError> {
        if let Some(account) = storage::accounts::get(&self.db, account_id).await? {
            self.supervisor.do_send(StartAccount(account));
            self.restart_targets_of(account_id).await?;
        }
        Ok(())
    }

    /// Targets hold their account's address: give them the new one after a restart.
    async fn restart_targets_of(&self, account_id: Uuid) -> Result<(), TrackingError> {
        for user in storage::tracked_users::active(&self.db).await? {
            if user.account_id == Some(account_id) {
                self.supervisor.do_send(StartTarget(user));
            }
        }
        Ok(())
    }

    /// Starts the actors of every stored account and active tracked user (at start-up).
    pub async fn start_all(&self) -> Result<(), TrackingError> {
        for account in storage::accounts::all(&self.db).await? {
            self.supervisor.do_send(StartAccount(account));
        }
        self.start_targets().await
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
        if value.is_some_and(|value| value < 0) {
            return Err(TrackingError::Invalid {
                field,
                message: "must not be negative".into(),
            });
        }
    }
    Ok(())
}
