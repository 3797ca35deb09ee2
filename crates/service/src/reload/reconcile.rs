//! config.toml as desired state: each [`ConfigReconciler`] brings one part of the database and
//! the running actors in line with the file, at start and after every accepted edit.
//!
//! Rules shared by every part:
//! - Rows carry their origin in `source` (`config` or `api`). Rows the file does not name and
//!   whose source is `api` are never touched.
//! - A row the file names is owned by the file from then on (an API-made account with the same
//!   label is adopted: its source becomes `config`).
//! - A row whose source is `config` and that the file no longer names is stopped: an account is
//!   deactivated (its session and history stay), a tracked user untracked (history kept), a
//!   webhook endpoint deleted.
//! - One item that cannot be applied (an unknown username, a full account) is logged as a config
//!   problem (`GET /api/logs`) and skipped; the others apply.
//!
//! The decisions are pure functions ([`plan_accounts`], [`plan_tracked_users`],
//! [`plan_channels`]) tested directly;
//! the reconcilers carry them out.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, PoisonError},
};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::{
    channels::{AddChannel, ChannelError, ChannelInput, describe},
    tracking::{TrackRequest, Tracking},
};
use tgwatch_core::config::Origin;
use tgwatch_core::{
    clock::Clock,
    config::{AccountConfig, Config, TrackedUserConfig},
};
use tgwatch_store::{
    self as storage, StorageError,
    accounts::{AccountPatch, AccountStatus, NewAccount},
    channels::ChannelStatus,
    entities::{accounts, channels, tracked_users},
};
use tgwatch_telegram::{ChannelRef, Username};

/// `status_reason` of an account deactivated because it left config.toml; such an account is
/// activated again when it comes back.
pub const REMOVED_FROM_CONFIG: &str = "removed from config.toml";

/// What a reconciler works with.
#[derive(Clone)]
pub struct ReconcileContext {
    pub db: DatabaseConnection,
    pub tracking: Tracking,
    /// The operations on channels (join, move, leave), for the `[[channels]]` reconciler.
    pub channels: crate::channels::Channels,
    pub clock: Clock,
    /// Whether the fleet's actors run: start and stop them along with the rows. False only for
    /// the accounts applied at start-up, before the fleet starts.
    pub live: bool,
    /// The items that could not be applied, this reconciliation and the one before.
    pub problems: Arc<Mutex<Problems>>,
}

/// Items of the file that could not be applied. Every reconciliation tries every item again, so
/// the same problem comes back with each edit: it is reported the first time, and counted
/// after that.
#[derive(Debug, Default)]
pub struct Problems {
    previous: HashSet<String>,
    current: HashSet<String>,
}

impl ReconcileContext {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// An item of the file that could not be applied: to the process log and `GET /api/logs`,
    /// unless the last reconciliation reported it already.
    pub async fn problem(&self, message: &str) {
        let new = {
            let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
            problems.current.insert(message.to_owned());
            !problems.previous.contains(message)
        };
        if new {
            storage::logs::config_problem(&self.db, message, self.now()).await;
        } else {
            tracing::debug!(problem = message, "configuration item still cannot apply");
        }
    }
}

/// What a reconciliation did not apply.
#[derive(Debug)]
pub struct Outcome {
    /// Sections that could not be applied at all, with the error (the database is away).
    pub failed_sections: Vec<(&'static str, StorageError)>,
    /// Items that could not be applied (each reported with [`ReconcileContext::problem`]).
    pub failed_items: usize,
    /// Of those, the ones the reconciliation before did not have.
    pub new_failed_items: usize,
}

/// One part of config.toml that is desired state.
///
/// To plug in a new part (channels): implement this trait and add it to [`reconcilers`]. It is
/// called at start (after the fleet started) and after every accepted edit of the file, with
/// the whole new configuration, one reconciler at a time in the order of [`reconcilers`] (never
/// two reconciliations at once). Follow the rules of this module: leave rows whose source is
/// `api` alone, stop `config` rows the file no longer names, report an item that cannot apply
/// with [`ReconcileContext::problem`] and go on. Return `Err` only when the whole part cannot be
/// applied (the database is away): the reloader then tries the file again a second later.
#[async_trait::async_trait(?Send)]
pub trait ConfigReconciler: Send + Sync {
    /// The section it owns, for logs (`accounts`, `channels`).
    fn section(&self) -> &'static str;
    async fn reconcile(&self, ctx: &ReconcileContext, config: &Config) -> Result<(), StorageError>;
}

/// Every part of the file that is desired state, in the order they apply: accounts before the
/// users and channels they watch, users before the webhooks filtered by them.
pub fn reconcilers() -> Vec<Box<dyn ConfigReconciler>> {
    vec![
        Box::new(AccountsReconciler),
        Box::new(TrackedUsersReconciler),
        Box::new(WebhooksReconciler),
        Box::new(ChannelsReconciler),
    ]
}

/// Runs every reconciler; returns what could not be applied.
pub async fn reconcile_all(
    ctx: &ReconcileContext,
    config: &Config,
    reconcilers: &[Box<dyn ConfigReconciler>],
) -> Outcome {
    let mut failed_sections = Vec::new();
    // Instances sharing a database read the same file: one applies it at a time, and the next
    // finds the database (the shared desired state) already matching, so nothing applies twice.
    let lock = storage::cluster::lock_config(&ctx.db).await;
    if let Err(error) = &lock {
        tracing::warn!(%error, "cannot take the configuration lock; applying without it");
    }
    for reconciler in reconcilers {
        if let Err(error) = reconciler.reconcile(ctx, config).await {
            tracing::error!(section = reconciler.section(), %error, "cannot apply this part of the configuration");
            failed_sections.push((reconciler.section(), error));
        }
    }
    if let Ok(lock) = lock
        && let Err(error) = lock.release().await
    {
        tracing::warn!(%error, "cannot release the configuration lock");
    }
    let mut problems = ctx.problems.lock().unwrap_or_else(PoisonError::into_inner);
    let current = std::mem::take(&mut problems.current);
    let outcome = Outcome {
        failed_sections,
        failed_items: current.len(),
        new_failed_items: current.difference(&problems.previous).count(),
    };
    problems.previous = current;
    outcome
}

/// Field changes a declared account asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AccountChanges {
    pub phone: Option<String>,
    pub api_id: Option<i32>,
    pub max_targets: Option<i32>,
    pub max_channels: Option<i32>,
}

impl AccountChanges {
    fn is_empty(&self) -> bool {
        *self == AccountChanges::default()
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum AccountAction<'a> {
    Create(&'a AccountConfig),
    Update {
        id: Uuid,
        label: String,
        changes: AccountChanges,
        /// The row was made through the API: the file takes it over.
        adopt: bool,
        /// The row was deactivated when it left the file and is back.
        reactivate: bool,
    },
    Deactivate {
        id: Uuid,
        label: String,
    },
}

/// What to do so that the accounts match `declared` (matched by label).
pub fn plan_accounts<'a>(
    declared: &'a [AccountConfig],
    existing: &[accounts::Model],
) -> Vec<AccountAction<'a>> {
    let mut actions = Vec::new();
    for account in declared {
        let Some(row) = existing.iter().find(|row| row.label == account.label) else {
            actions.push(AccountAction::Create(account));
            continue;
        };
        let changes = AccountChanges {
            phone: account
                .phone
                .clone()
                .filter(|p| Some(p) != row.phone.as_ref()),
            api_id: account.api_id.filter(|id| Some(*id) != row.api_id),
            max_targets: (account.max_targets != row.max_targets).then_some(account.max_targets),
            max_channels: (account.max_channels != row.max_channels)
                .then_some(account.max_channels),
        };
        let adopt = row.source != Origin::Config;
        let reactivate = removed_from_config(row);
        if adopt || reactivate || !changes.is_empty() {
            actions.push(AccountAction::Update {
                id: row.id,
                label: row.label.clone(),
                changes,
                adopt,
                reactivate,
            });
        }
    }
    for row in existing {
        if row.source == Origin::Config
            && !removed_from_config(row)
            && !declared.iter().any(|account| account.label == row.label)
        {
            actions.push(AccountAction::Deactivate {
                id: row.id,
                label: row.label.clone(),
            });
        }
    }
    actions
}

fn removed_from_config(row: &accounts::Model) -> bool {
    row.status == AccountStatus::Inactive
        && row.status_reason.as_deref() == Some(REMOVED_FROM_CONFIG)
}

#[derive(Debug, PartialEq, Eq)]
pub enum UserAction<'a> {
    Track(&'a TrackedUserConfig),
    Update {
        id: Uuid,
        notify: Option<bool>,
        /// Move to this account.
        account_id: Option<Uuid>,
        adopt: bool,
    },
    Untrack {
        id: Uuid,
    },
}

/// Whether a declared user is this row (same username, or same Telegram id).
pub fn declares(user: &TrackedUserConfig, row: &tracked_users::Model) -> bool {
    let by_name = user
        .username
        .as_deref()
        .and_then(|name| Username::parse(name).ok())
        .zip(row.username.as_deref())
        .is_some_and(|(declared, stored)| declared.as_str() == stored);
    let by_id = user.telegram_user_id.is_some() && user.telegram_user_id == row.telegram_user_id;
    by_name || by_id
}

/// What to do so that the actively tracked users match `declared`. `account_ids` maps labels to
/// account ids (a label not in it leaves the user where it is).
pub fn plan_tracked_users<'a>(
    declared: &'a [TrackedUserConfig],
    active: &[tracked_users::Model],
    account_ids: &HashMap<String, Uuid>,
) -> Vec<UserAction<'a>> {
    let mut actions = Vec::new();
    for user in declared {
        let Some(row) = active.iter().find(|row| declares(user, row)) else {
            actions.push(UserAction::Track(user));
            continue;
        };
        let notify = (user.notify != row.notify).then_some(user.notify);
        let account_id = user
            .account
            .as_ref()
            .and_then(|label| account_ids.get(label))
            .copied()
            .filter(|id| Some(*id) != row.account_id);
        let adopt = row.source != Origin::Config;
        if adopt || notify.is_some() || account_id.is_some() {
            actions.push(UserAction::Update {
                id: row.id,
                notify,
                account_id,
                adopt,
            });
        }
    }
    for row in active {
        if row.source == Origin::Config && !declared.iter().any(|user| declares(user, row)) {
            actions.push(UserAction::Untrack { id: row.id });
        }
    }
    actions
}

/// `[[accounts]]`.
pub struct AccountsReconciler;

#[async_trait::async_trait(?Send)]
impl ConfigReconciler for AccountsReconciler {
    fn section(&self) -> &'static str {
        "accounts"
    }

    async fn reconcile(&self, ctx: &ReconcileContext, config: &Config) -> Result<(), StorageError> {
        let existing = storage::accounts::all(&ctx.db).await?;
        for action in plan_accounts(&config.accounts, &existing) {
            let label = match &action {
                AccountAction::Create(account) => account.label.clone(),
                AccountAction::Update { label, .. } | AccountAction::Deactivate { label, .. } => {
                    label.clone()
                }
            };
            if let Err(error) = apply_account(ctx, action).await {
                ctx.problem(&format!("config account `{label}`: {error}"))
                    .await;
            }
        }
        Ok(())
    }
}

async fn apply_account(
    ctx: &ReconcileContext,
    action: AccountAction<'_>,
) -> Result<(), crate::tracking::TrackingError> {
    let now = ctx.now();
    match action {
        AccountAction::Create(account) => {
            let new = NewAccount {
                label: account.label.clone(),
                phone: account.phone.clone(),
                username: None,
                telegram_user_id: None,
                api_id: account.api_id,
                max_targets: Some(account.max_targets),
                max_channels: Some(account.max_channels),
                status: None,
            };
            // Before the fleet starts, the cluster's first round starts it with the others.
            let created = if ctx.live {
                ctx.tracking.add_account(new, now).await?
            } else {
                storage::accounts::create(&ctx.db, new, now).await?
            };
            storage::accounts::set_source(&ctx.db, created.id, Origin::Config).await?;
            tracing::info!(account = %account.label, "account added from config.toml");
        }
        AccountAction::Update {
            id,
            label,
            changes,
            adopt,
            reactivate,
        } => {
            let Some(row) = storage::accounts::get(&ctx.db, id).await? else {
                return Ok(()); // deleted meanwhile
            };
            let patch = AccountPatch {
                phone: changes.phone,
                api_id: changes.api_id,
                max_targets: changes.max_targets,
                max_channels: changes.max_channels,
                status: reactivate.then_some(AccountStatus::Active),
                ..AccountPatch::default()
            };
            if ctx.live {
                ctx.tracking.update_account(row, patch, now).await?;
            } else {
                storage::accounts::update(&ctx.db, row, patch, now).await?;
            }
            if adopt {
                storage::accounts::set_source(&ctx.db, id, Origin::Config).await?;
            }
            tracing::info!(account = %label, adopt, reactivate, "account updated from config.toml");
        }
        AccountAction::Deactivate { id, label } => {
            let Some(row) = storage::accounts::get(&ctx.db, id).await? else {
                return Ok(());
            };
            if ctx.live {
                let patch = AccountPatch {
                    status: Some(AccountStatus::Inactive),
                    ..AccountPatch::default()
                };
                ctx.tracking.update_account(row, patch, now).await?;
            }
            storage::accounts::set_status(
                &ctx.db,
                id,
                AccountStatus::Inactive,
                Some(REMOVED_FROM_CONFIG.to_owned()),
                now,
            )
            .await?;
            tracing::info!(account = %label, "account left config.toml: deactivated (session and history kept)");
        }
    }
    Ok(())
}

/// `[[tracked_users]]`. Resolving a new user is one Telegram call through its account, so this
/// runs only with the fleet started.
pub struct TrackedUsersReconciler;

#[async_trait::async_trait(?Send)]
impl ConfigReconciler for TrackedUsersReconciler {
    fn section(&self) -> &'static str {
        "tracked_users"
    }

    async fn reconcile(&self, ctx: &ReconcileContext, config: &Config) -> Result<(), StorageError> {
        if !ctx.live {
            return Ok(());
        }
        let active = storage::tracked_users::active(&ctx.db).await?;
        let account_ids: HashMap<String, Uuid> = storage::accounts::all(&ctx.db)
            .await?
            .into_iter()
            .map(|account| (account.label, account.id))
            .collect();
        for action in plan_tracked_users(&config.tracked_users, &active, &account_ids) {
            let who = match &action {
                UserAction::Track(user) => describe_declared(user),
                UserAction::Update { id, .. } | UserAction::Untrack { id } => active
                    .iter()
                    .find(|row| row.id == *id)
                    .map_or_else(|| id.to_string(), ToString::to_string),
            };
            if let Err(error) = apply_user(ctx, action, &active, &account_ids).await {
                ctx.problem(&format!("config tracked user {who}: {error}"))
                    .await;
            }
        }
        Ok(())
    }
}

/// `@username` or `user 123`, as the file names the user.
fn describe_declared(user: &TrackedUserConfig) -> String {
    match (&user.username, user.telegram_user_id) {
        (Some(username), _) => format!("@{}", username.trim_start_matches('@')),
        (None, Some(id)) => format!("user {id}"),
        (None, None) => "without a username or id".to_owned(),
    }
}

async fn apply_user(
    ctx: &ReconcileContext,
    action: UserAction<'_>,
    active: &[tracked_users::Model],
    account_ids: &HashMap<String, Uuid>,
) -> Result<(), crate::tracking::TrackingError> {
    let now = ctx.now();
    let row_of = |id: Uuid| active.iter().find(|row| row.id == id).cloned();
    match action {
        UserAction::Track(user) => {
            let username = user
                .username
                .as_deref()
                .and_then(|name| Username::parse(name).ok());
            let request = TrackRequest {
                username,
                telegram_user_id: user.telegram_user_id,
                access_hash: None,
                account_id: user
                    .account
                    .as_ref()
                    .and_then(|label| account_ids.get(label))
                    .copied(),
                notify: Some(user.notify),
                visible_online: None,
                source: Origin::Config,
            };
            let tracked = ctx.tracking.track(request, now).await?;
            tracing::info!(tracked_user = %tracked, "tracking a user from config.toml");
        }
        UserAction::Update {
            id,
            notify,
            account_id,
            adopt,
        } => {
            let Some(row) = row_of(id) else {
                return Ok(());
            };
            if notify.is_some() || account_id.is_some() {
                ctx.tracking
                    .update(
                        row.clone(),
                        crate::tracking::TrackedUserChange {
                            notify,
                            account_id,
                            ..Default::default()
                        },
                        now,
                    )
                    .await?;
            }
            if adopt {
                storage::tracked_users::set_source(&ctx.db, id, Origin::Config).await?;
            }
            tracing::info!(tracked_user = %row, adopt, "tracked user updated from config.toml");
        }
        UserAction::Untrack { id } => {
            let Some(row) = row_of(id) else {
                return Ok(());
            };
            tracing::info!(tracked_user = %row, "user left config.toml: no longer tracked (history kept)");
            ctx.tracking.untrack(row, false, now).await?;
        }
    }
    Ok(())
}

/// `[[webhooks.endpoints]]` (see `webhooks::endpoints::reconcile`).
pub struct WebhooksReconciler;

#[async_trait::async_trait(?Send)]
impl ConfigReconciler for WebhooksReconciler {
    fn section(&self) -> &'static str {
        "webhooks.endpoints"
    }

    async fn reconcile(&self, ctx: &ReconcileContext, config: &Config) -> Result<(), StorageError> {
        crate::webhooks::endpoints::reconcile(&ctx.db, &config.webhooks, ctx.now()).await
    }
}

/// What `[[channels]]` asks for, compared with the channels monitored: which to add, and which
/// channels the file declared before but names no more (to remove). Pure.
pub fn plan_channels<'a>(
    declared: &'a [tgwatch_core::config::ChannelConfig],
    monitored: &[channels::Model],
) -> (Vec<&'a tgwatch_core::config::ChannelConfig>, Vec<Uuid>) {
    use tgwatch_core::config::ChannelTarget;
    let names = |channel: &channels::Model, target: &ChannelTarget| match target {
        ChannelTarget::Id(id) => channel.telegram_channel_id == Some(*id),
        ChannelTarget::Link(ChannelRef::Username(name)) => {
            channel.username.as_deref() == Some(name.as_str())
        }
        ChannelTarget::Link(ChannelRef::Invite(hash)) => {
            channel.invite_hash.as_deref() == Some(hash.as_str())
        }
        ChannelTarget::Link(ChannelRef::Id(input)) => channel.telegram_channel_id == Some(input.id),
    };
    let targets: Vec<(&tgwatch_core::config::ChannelConfig, ChannelTarget)> = declared
        .iter()
        .filter_map(|entry| entry.channel.target().ok().map(|target| (entry, target)))
        .collect();
    let to_add = targets
        .iter()
        .filter(|(_, target)| !monitored.iter().any(|channel| names(channel, target)))
        .map(|(entry, _)| *entry)
        .collect();
    let to_remove = monitored
        .iter()
        .filter(|channel| channel.source == Origin::Config)
        .filter(|channel| !targets.iter().any(|(_, target)| names(channel, target)))
        .map(|channel| channel.id)
        .collect();
    (to_add, to_remove)
}

/// `[[channels]]` as desired state : declared channels are joined,
/// channels the file declared and no longer names are left; channels added through the API
/// are never touched.
pub struct ChannelsReconciler;

/// How long a declared channel waits for an account to be connected (at start-up the accounts
/// connect while the file is applied).
const RECONCILE_JOIN_TRIES: u32 = 10;

#[async_trait::async_trait(?Send)]
impl ConfigReconciler for ChannelsReconciler {
    fn section(&self) -> &'static str {
        "channels"
    }

    async fn reconcile(
        &self,
        ctx: &ReconcileContext,
        config: &tgwatch_core::config::Config,
    ) -> Result<(), StorageError> {
        if !ctx.live {
            return Ok(());
        }
        let monitored: Vec<channels::Model> = storage::channels::monitored(&ctx.db)
            .await?
            .into_iter()
            .filter(|channel| channel.status != ChannelStatus::Left)
            .collect();
        let (to_add, to_remove) = plan_channels(&config.channels, &monitored);
        for entry in to_add {
            let account_id = match &entry.account {
                Some(label) => match storage::accounts::find_by_label(&ctx.db, label).await? {
                    Some(account) => Some(account.id),
                    None => {
                        ctx.problem(&format!("config channel: no account labelled `{label}`"))
                            .await;
                        continue;
                    }
                },
                None => None,
            };
            let channel = match entry.channel.target() {
                Ok(tgwatch_core::config::ChannelTarget::Link(reference)) => {
                    ChannelInput::Reference(reference)
                }
                Ok(tgwatch_core::config::ChannelTarget::Id(id)) => ChannelInput::Id(id),
                Err(error) => {
                    ctx.problem(&format!("config channel: {error}")).await;
                    continue;
                }
            };
            let request = AddChannel {
                channel,
                account_id,
                tags: entry.tags.clone(),
            };
            let mut tries = 0;
            loop {
                tries += 1;
                match ctx.channels.add(request.clone(), Origin::Config).await {
                    Ok(added) => {
                        tracing::info!(channel = %describe(&added.channel), rejoined = added.rejoined, "monitoring a channel from config.toml");
                        break;
                    }
                    // Accounts are still connecting (start-up): wait a little.
                    Err(ChannelError::Resolve(_) | ChannelError::NoAccountAvailable(_))
                        if tries < RECONCILE_JOIN_TRIES =>
                    {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                    Err(error) => {
                        ctx.problem(&format!("config channel `{}`: {error}", entry.channel))
                            .await;
                        break;
                    }
                }
            }
        }
        for id in to_remove {
            if let Some(channel) = storage::channels::get(&ctx.db, id).await?
                && let Err(error) = ctx.channels.remove(channel).await
            {
                ctx.problem(&format!("config channel removal: {error}"))
                    .await;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tgwatch_core::config::{ChannelConfig, ChannelName};

    fn declared(name: &str) -> ChannelConfig {
        ChannelConfig {
            channel: ChannelName::Text(name.to_owned()),
            account: None,
            tags: Vec::new(),
        }
    }

    fn monitored(username: Option<&str>, telegram_id: i64, source: Origin) -> channels::Model {
        let now = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
        channels::Model {
            id: Uuid::from_u128(telegram_id as u128),
            telegram_channel_id: Some(telegram_id),
            access_hash: Some(1),
            username: username.map(str::to_owned),
            invite_hash: None,
            title: None,
            about: None,
            member_count: None,
            tags: "[]".into(),
            is_active: true,
            status: ChannelStatus::Active,
            status_reason: None,
            account_id: None,
            date_joined: None,
            last_message_id: 0,
            last_event_at: None,
            source,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn declared_channels_not_monitored_are_added_and_file_channels_gone_from_it_are_removed() {
        let file = [declared("@news_room"), declared("https://t.me/tech_feed")];
        let rows = [
            monitored(Some("tech_feed"), 2, Origin::Config),
            monitored(Some("old_one"), 3, Origin::Config),
            monitored(Some("by_hand"), 4, Origin::Api),
        ];
        let (add, remove) = plan_channels(&file, &rows);
        assert_eq!(add.len(), 1);
        assert_eq!(add[0].channel, ChannelName::Text("@news_room".into()));
        assert_eq!(
            remove,
            [Uuid::from_u128(3)],
            "the API channel is never removed"
        );
    }

    fn account_row(label: &str, source: Origin) -> accounts::Model {
        let now = Utc::now();
        accounts::Model {
            id: Uuid::new_v4(),
            label: label.to_owned(),
            phone: None,
            username: None,
            telegram_user_id: None,
            api_id: None,
            status: AccountStatus::Active,
            is_authorized: false,
            max_targets: 1000,
            max_channels: 100,
            targets_count: 0,
            channels_count: 0,
            last_active: None,
            status_reason: None,
            source,
            created_at: now,
            updated_at: now,
        }
    }

    fn declared_account(label: &str, max_targets: i32) -> AccountConfig {
        AccountConfig {
            label: label.to_owned(),
            phone: None,
            api_id: None,
            max_targets,
            max_channels: 100,
        }
    }

    #[test]
    fn accounts_are_created_changed_deactivated_and_api_ones_left_alone() {
        let kept = account_row("kept", Origin::Config);
        let changed = account_row("changed", Origin::Config);
        let gone = account_row("gone", Origin::Config);
        let api = account_row("from_api", Origin::Api);
        let declared = vec![
            declared_account("kept", 1000),
            declared_account("changed", 50),
            declared_account("new", 10),
        ];
        let existing = vec![kept, changed.clone(), gone.clone(), api];
        let actions = plan_accounts(&declared, &existing);
        assert_eq!(
            actions,
            vec![
                AccountAction::Update {
                    id: changed.id,
                    label: "changed".into(),
                    changes: AccountChanges {
                        max_targets: Some(50),
                        ..AccountChanges::default()
                    },
                    adopt: false,
                    reactivate: false,
                },
                AccountAction::Create(&declared[2]),
                AccountAction::Deactivate {
                    id: gone.id,
                    label: "gone".into()
                },
            ]
        );
    }

    #[test]
    fn a_removed_account_is_deactivated_once_and_comes_back() {
        let mut gone = account_row("gone", Origin::Config);
        gone.status = AccountStatus::Inactive;
        gone.status_reason = Some(REMOVED_FROM_CONFIG.into());
        assert!(plan_accounts(&[], std::slice::from_ref(&gone)).is_empty());
        let declared = vec![declared_account("gone", 1000)];
        assert_eq!(
            plan_accounts(&declared, std::slice::from_ref(&gone)),
            vec![AccountAction::Update {
                id: gone.id,
                label: "gone".into(),
                changes: AccountChanges::default(),
                adopt: false,
                reactivate: true,
            }]
        );
        // Deactivated by an operator (no config reason): the file does not override it.
        gone.status_reason = None;
        assert!(plan_accounts(&declared, std::slice::from_ref(&gone)).is_empty());
    }

    #[test]
    fn a_declared_api_account_is_adopted() {
        let api = account_row("main", Origin::Api);
        let declared = vec![declared_account("main", 1000)];
        assert_eq!(
            plan_accounts(&declared, std::slice::from_ref(&api)),
            vec![AccountAction::Update {
                id: api.id,
                label: "main".into(),
                changes: AccountChanges::default(),
                adopt: true,
                reactivate: false,
            }]
        );
    }

    fn user_row(username: &str, id: i64, source: Origin) -> tracked_users::Model {
        let now = Utc::now();
        tracked_users::Model {
            id: Uuid::new_v4(),
            telegram_user_id: Some(id),
            username: Some(username.to_owned()),
            first_name: None,
            access_hash: Some(1),
            account_id: None,
            visible_online: true,
            notify: false,
            is_active: true,
            source,
            created_at: now,
            updated_at: now,
        }
    }

    fn declared_user(username: Option<&str>, id: Option<i64>, notify: bool) -> TrackedUserConfig {
        TrackedUserConfig {
            username: username.map(str::to_owned),
            telegram_user_id: id,
            account: None,
            notify,
        }
    }

    #[test]
    fn users_are_tracked_changed_and_untracked_and_api_ones_left_alone() {
        let alice = user_row("alice_w", 1, Origin::Config);
        let bob = user_row("bob_smith", 2, Origin::Config);
        let carol = user_row("carol_x", 3, Origin::Config);
        let api = user_row("dave_api", 4, Origin::Api);
        let declared = vec![
            // Same user, written differently.
            declared_user(Some("@Alice_W"), None, false),
            declared_user(None, Some(2), true),
            declared_user(Some("https://t.me/erin_new"), None, false),
        ];
        let active = vec![alice, bob.clone(), carol.clone(), api];
        let actions = plan_tracked_users(&declared, &active, &HashMap::new());
        assert_eq!(
            actions,
            vec![
                UserAction::Update {
                    id: bob.id,
                    notify: Some(true),
                    account_id: None,
                    adopt: false,
                },
                UserAction::Track(&declared[2]),
                UserAction::Untrack { id: carol.id },
            ]
        );
    }

    #[test]
    fn a_user_moves_to_the_declared_account_and_an_api_user_is_adopted() {
        let main = Uuid::new_v4();
        let other = Uuid::new_v4();
        let mut alice = user_row("alice_w", 1, Origin::Api);
        alice.account_id = Some(main);
        let mut declared = declared_user(Some("alice_w"), None, false);
        declared.account = Some("other".into());
        let ids = HashMap::from([("main".to_owned(), main), ("other".to_owned(), other)]);
        assert_eq!(
            plan_tracked_users(std::slice::from_ref(&declared), &[alice.clone()], &ids),
            vec![UserAction::Update {
                id: alice.id,
                notify: None,
                account_id: Some(other),
                adopt: true,
            }]
        );
    }
}
