//! Several `tgwatch run` on one PostgreSQL database (README, "Several instances").
//!
//! Each instance registers in `cluster_instances` and renews a heartbeat there every third of
//! `[cluster] lease_seconds`; in the same round it renews its leases (`cluster_leases`), takes
//! or hands over accounts so that every live instance holds its fair share
//! ([`tgwatch_core::cluster::plan_accounts`]), and keeps the leader lease if it has it or it is
//! free. What it holds decides what it runs ([`Ownership`], asked by the FleetSupervisor): the
//! accounts, the people tracked through them and the routes of the channels. An instance that
//! dies stops renewing; after the lease time the others take its accounts and start them: the
//! people's actors resume their gap-rule state from the database, and the accounts' channels are
//! caught up from history. A stopping instance releases its leases at once ([`Cluster::leave`]).
//!
//! Leases are rows with an owner and an expiry rather than PostgreSQL advisory locks: a row is
//! visible to `GET /api/cluster` and works the same on SQLite, and it ties ownership to the
//! instance, not to one pooled connection. Every time is the database's clock.
//!
//! SQLite is for one instance only: [`lock_sqlite_file`] refuses a second one on the same file.

use std::{
    collections::{HashMap, HashSet},
    fs::File,
    path::Path,
    time::Duration,
};

use actix::Addr;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    actors::{
        channels::{Unwatch, Watch},
        messages::{KeptTargets, StartAccount, StartTarget, StopAccount, StopTarget},
        ownership::Ownership,
        supervisor::FleetSupervisor,
    },
    channels::Channels,
};
use tgwatch_core::cluster::{LeaseResource, plan_accounts};
use tgwatch_store::{self as storage, StorageError, channels::ChannelStatus, entities::channels};

/// How often a taken-over account is asked for its session before its channels are caught up
/// (it connects first), and how long between asks.
const CATCH_UP_TRIES: u32 = 60;
const CATCH_UP_RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "another tgwatch is running on the SQLite database {path}: SQLite serves one instance \
         only (stop the other one, or use PostgreSQL for several instances, see README \
         \"Several instances\")"
    )]
    SqliteInUse { path: String },
    #[error("cannot lock the SQLite database {path}: {source}")]
    SqliteLock {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// How long a start waits for another instance to let go of the SQLite file before it is
/// refused: a restart may begin while the old process still finishes its stop.
const SQLITE_LOCK_PATIENCE: Duration = Duration::from_secs(5);

/// Locks the SQLite database file for this process (an exclusive `flock` on the file itself,
/// which SQLite's own POSIX locks ignore): a second instance on the same file is refused. The
/// kernel drops the lock when the process ends, even killed, so a restart after a crash is never
/// refused. Hold the file as long as the service runs.
pub async fn lock_sqlite_file(database: &Path) -> Result<File, ClusterError> {
    let path = database.display().to_string();
    let file = File::options()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(database)
        .map_err(|source| ClusterError::SqliteLock {
            path: path.clone(),
            source,
        })?;
    let deadline = tokio::time::Instant::now() + SQLITE_LOCK_PATIENCE;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if tokio::time::Instant::now() < deadline => {
                tracing::info!(database = %path, "another instance holds the SQLite database: waiting for it to stop");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ClusterError::SqliteInUse { path });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(ClusterError::SqliteLock { path, source });
            }
        }
    }
}

/// This instance's membership: its registry row, what it holds, and the fleet it starts and
/// stops as its leases come and go.
#[derive(Clone)]
pub struct Cluster {
    db: DatabaseConnection,
    instance: storage::cluster::Instance,
    ownership: Ownership,
    supervisor: Addr<FleetSupervisor>,
    channels: Channels,
}

/// What the previous round left running, to tell what changed.
#[derive(Default)]
struct Running {
    /// The first round starts the fleet as at any start; later rounds take accounts over.
    started: bool,
    /// The people started, with their account.
    targets: HashMap<Uuid, Option<Uuid>>,
    /// The channel routes told to the channels actor, by Telegram channel id.
    routes: HashMap<i64, (Uuid, Option<String>, bool)>,
}

impl Cluster {
    /// Registers the instance (on SQLite, after forgetting what a dead predecessor left).
    pub async fn join(
        db: DatabaseConnection,
        ownership: Ownership,
        supervisor: Addr<FleetSupervisor>,
        channels: Channels,
    ) -> Result<Cluster, StorageError> {
        let now = storage::cluster::database_now(&db).await?;
        let instance = storage::cluster::Instance {
            id: ownership.instance_id(),
            host: host_name(),
            pid: i32::try_from(std::process::id()).unwrap_or(i32::MAX),
            started_at: now,
            heartbeat_at: now,
        };
        if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
            storage::cluster::forget_others(&db, instance.id).await?;
        }
        storage::cluster::heartbeat(&db, &instance, now).await?;
        tracing::info!(instance = %instance.id, host = %instance.host, "joined the cluster");
        Ok(Cluster {
            db,
            instance,
            ownership,
            supervisor,
            channels,
        })
    }

    /// The first round (leases taken, the fleet started), then a round every third of the
    /// lease until [`Cluster::leave`].
    pub async fn start(&self) -> Result<ClusterRunning, StorageError> {
        let mut running = Running::default();
        self.round(&mut running).await?;
        running.started = true;
        let cluster = self.clone();
        let interval = self.ownership.lease() / 3;
        let task = actix::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                if let Err(error) = cluster.round(&mut running).await {
                    tracing::error!(%error, "cluster heartbeat failed; the leases run out unless the next one succeeds");
                }
            }
        });
        Ok(ClusterRunning {
            cluster: self.clone(),
            task,
        })
    }

    /// One heartbeat: registry, leases, leadership, then the fleet started or stopped to match.
    async fn round(&self, running: &mut Running) -> Result<(), StorageError> {
        let db = &self.db;
        let me = self.instance.id;
        let lease = self.ownership.lease();
        let now = storage::cluster::database_now(db).await?;
        let until = now + lease;
        storage::cluster::heartbeat(db, &self.instance, now).await?;
        storage::cluster::forget_dead(db, now - lease).await?;
        storage::cluster::renew(db, me, now, until).await?;
        let leader =
            storage::cluster::try_take(db, &LeaseResource::Leader.key(), me, now, until).await?;
        if leader != self.ownership.is_leader() {
            tracing::info!(instance = %me, leader, "leadership changed");
        }
        self.ownership.set_leader(leader);

        let instances: Vec<Uuid> = storage::cluster::live_instances(db, now - lease)
            .await?
            .into_iter()
            .map(|instance| instance.id)
            .collect();
        let accounts: HashMap<Uuid, storage::entities::accounts::Model> =
            storage::accounts::all(db)
                .await?
                .into_iter()
                .filter(|account| account.status.is_usable())
                .map(|account| (account.id, account))
                .collect();
        let mut usable: Vec<Uuid> = accounts.keys().copied().collect();
        usable.sort();
        let mut holders: HashMap<Uuid, Uuid> = storage::cluster::valid_leases(db, now)
            .await?
            .into_iter()
            .filter_map(|lease| match LeaseResource::parse(&lease.resource) {
                Some(LeaseResource::Account(account)) => Some((account, lease.instance_id)),
                _ => None,
            })
            .collect();

        let plan = plan_accounts(me, &instances, &usable, &holders);
        // Handed over: stopped here before the lease goes, so it never runs twice.
        for account in &plan.release {
            self.supervisor.do_send(StopAccount(*account));
            holders.remove(account);
        }
        // A banned or disabled account runs nowhere: its lease is let go too.
        let unused: Vec<Uuid> = holders
            .iter()
            .filter(|(account, holder)| **holder == me && !accounts.contains_key(account))
            .map(|(account, _)| *account)
            .collect();
        let released: Vec<String> = plan
            .release
            .iter()
            .chain(&unused)
            .map(|account| LeaseResource::Account(*account).key())
            .collect();
        storage::cluster::release(db, me, &released).await?;
        if !plan.release.is_empty() {
            tracing::info!(instance = %me, accounts = plan.release.len(), "handed accounts over to balance the cluster");
        }
        for account in &plan.take {
            let key = LeaseResource::Account(*account).key();
            if storage::cluster::try_take(db, &key, me, now, until).await? {
                holders.insert(*account, me);
            }
        }

        let held: HashSet<Uuid> = holders
            .iter()
            .filter(|(account, holder)| **holder == me && accounts.contains_key(account))
            .map(|(account, _)| *account)
            .collect();
        let before = self.ownership.accounts();
        self.ownership.set_accounts(held.clone());
        for lost in before.difference(&held) {
            if !plan.release.contains(lost) && !unused.contains(lost) {
                tracing::warn!(instance = %me, account = %lost, "lost an account's lease: stopping it here");
            }
            self.supervisor.do_send(StopAccount(*lost));
        }
        for gained in held.difference(&before) {
            let Some(account) = accounts.get(gained) else {
                continue;
            };
            if running.started {
                tracing::info!(instance = %me, account = %account.label, "took an account over");
            }
            // Where its channels stood before it starts: the catch-up reads on from there.
            let channels = match running.started {
                true => Some(storage::channels::of_account(db, *gained).await?),
                false => None,
            };
            self.supervisor.do_send(StartAccount(account.clone()));
            if let Some(channels) = channels {
                self.catch_up_later(*gained, channels);
            }
        }
        self.start_targets(running, &held, leader).await?;
        self.route_channels(running).await
    }

    /// Starts the people of the accounts held here that do not run yet (or whose account
    /// changed), and stops those that belong elsewhere now.
    async fn start_targets(
        &self,
        running: &mut Running,
        held: &HashSet<Uuid>,
        leader: bool,
    ) -> Result<(), StorageError> {
        let kept = self
            .supervisor
            .send(KeptTargets)
            .await
            .map_err(|_| StorageError::Unavailable)?;
        let mut wanted = HashMap::new();
        for tracked in storage::tracked_users::active(&self.db).await? {
            let here = match tracked.account_id {
                Some(account) => held.contains(&account),
                None => leader,
            };
            if !here {
                continue;
            }
            let moved = running
                .targets
                .get(&tracked.id)
                .is_some_and(|account| *account != tracked.account_id);
            wanted.insert(tracked.id, tracked.account_id);
            if !kept.contains(&tracked.id) || moved {
                self.supervisor.do_send(StartTarget(tracked));
            }
        }
        for target in kept.iter().filter(|target| !wanted.contains_key(target)) {
            self.supervisor.do_send(StopTarget(*target));
        }
        running.targets = wanted;
        Ok(())
    }

    /// Tells the channels actor of channels added, changed or removed by any instance, so that
    /// the posts of every account held here are routed.
    async fn route_channels(&self, running: &mut Running) -> Result<(), StorageError> {
        let mut routes = HashMap::new();
        for channel in storage::channels::monitored(&self.db).await? {
            let Some(telegram_id) = channel.telegram_channel_id else {
                continue;
            };
            let route = (
                channel.id,
                channel.username.clone(),
                channel.is_active && channel.status != ChannelStatus::Left,
            );
            if running.routes.get(&telegram_id) != Some(&route) {
                self.channels.router.do_send(Watch(channel));
            }
            routes.insert(telegram_id, route);
        }
        for telegram_channel_id in running.routes.keys() {
            if !routes.contains_key(telegram_channel_id) {
                self.channels.router.do_send(Unwatch {
                    telegram_channel_id: *telegram_channel_id,
                });
            }
        }
        running.routes = routes;
        Ok(())
    }

    /// Once the taken-over account is connected, reads what its channels posted while nobody
    /// listened (stored once: storing is idempotent).
    fn catch_up_later(&self, account_id: Uuid, watched: Vec<channels::Model>) {
        let channels = self.channels.clone();
        actix::spawn(async move {
            let mut last_error = None;
            for _ in 0..CATCH_UP_TRIES {
                tokio::time::sleep(CATCH_UP_RETRY).await;
                match channels.catch_up_account(account_id, &watched).await {
                    Ok(messages) => {
                        tracing::info!(account = %account_id, messages, "caught the account's channels up");
                        return;
                    }
                    Err(error) => last_error = Some(error.to_string()),
                }
            }
            tracing::warn!(account = %account_id, error = last_error, "could not catch the account's channels up");
        });
    }
}

/// The heartbeat running; [`ClusterRunning::leave`] ends it.
pub struct ClusterRunning {
    cluster: Cluster,
    task: tokio::task::JoinHandle<()>,
}

impl ClusterRunning {
    /// Stops the heartbeat and releases every lease at once, so that the other instances take
    /// the accounts at their next round instead of after the lease time; the instance leaves
    /// the registry.
    pub async fn leave(self) -> Result<(), StorageError> {
        self.task.abort();
        // Aborted: it ends as cancelled, which is what was asked.
        let _ = self.task.await;
        let accounts = self.cluster.ownership.accounts().len();
        self.cluster.ownership.set_accounts(HashSet::new());
        self.cluster.ownership.set_leader(false);
        let (db, id) = (&self.cluster.db, self.cluster.instance.id);
        // A pooled PostgreSQL connection opened inside an HTTP worker belongs to that worker's
        // runtime, which the stop has already ended: a statement on it fails, and the pool
        // replaces it with a live one for the second try.
        if let Err(error) = storage::cluster::leave(db, id).await {
            tracing::debug!(%error, "leaving the registry again on another connection");
            storage::cluster::leave(db, id).await?;
        }
        tracing::info!(instance = %self.cluster.instance.id, accounts, "left the cluster: accounts handed over");
        Ok(())
    }
}

/// One instance as `GET /api/cluster` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InstanceView {
    pub id: Uuid,
    /// The machine's host name.
    pub host: String,
    /// The process id on that machine.
    pub pid: i32,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// The accounts whose lease it holds.
    pub accounts: Vec<Uuid>,
    /// Whether it runs the singletons (bot polling, periodic jobs).
    pub leader: bool,
}

/// `GET /api/cluster`: the live instances, oldest first.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClusterView {
    pub instances: Vec<InstanceView>,
    /// `[cluster] lease_seconds`.
    pub lease_seconds: u64,
    /// Which of them answered this request.
    pub this_instance: Uuid,
}

/// The live instances and what each holds, as the database says now.
pub async fn view(
    db: &DatabaseConnection,
    ownership: &Ownership,
) -> Result<ClusterView, StorageError> {
    let lease = ownership.lease();
    let now = storage::cluster::database_now(db).await?;
    let mut accounts: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    let mut leader = None;
    for lease in storage::cluster::valid_leases(db, now).await? {
        match LeaseResource::parse(&lease.resource) {
            Some(LeaseResource::Account(account)) => {
                accounts.entry(lease.instance_id).or_default().push(account)
            }
            Some(LeaseResource::Leader) => leader = Some(lease.instance_id),
            None => {}
        }
    }
    let instances = storage::cluster::live_instances(db, now - lease)
        .await?
        .into_iter()
        .map(|instance| InstanceView {
            accounts: accounts.remove(&instance.id).unwrap_or_default(),
            leader: leader == Some(instance.id),
            id: instance.id,
            host: instance.host,
            pid: instance.pid,
            started_at: instance.started_at,
            heartbeat_at: instance.heartbeat_at,
        })
        .collect();
    Ok(ClusterView {
        instances,
        lease_seconds: lease.as_secs(),
        this_instance: ownership.instance_id(),
    })
}

/// Runs `start` while this instance is the leader: the tasks start when it becomes the leader
/// and are aborted when it stops being it (another instance then starts its own), or when the
/// returned task is aborted (the worker around it restarts or retires). A task that panics
/// panics this one too, so the worker restarts as before.
pub fn while_leader(
    ownership: &Ownership,
    mut start: impl FnMut() -> Vec<tokio::task::JoinHandle<()>> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let mut leadership = ownership.leadership();
    tokio::spawn(async move {
        loop {
            if leadership.wait_for(|leader| *leader).await.is_err() {
                return;
            }
            let mut tasks = AbortOnDrop(start());
            let ended = tokio::select! {
                _ = leadership.wait_for(|leader| !*leader) => None,
                (ended, _, _) = futures_util::future::select_all(tasks.0.iter_mut()), if !tasks.0.is_empty() => Some(ended),
            };
            let one_ended = ended.is_some();
            if let Some(Err(error)) = ended
                && error.is_panic()
            {
                std::panic::resume_unwind(error.into_panic());
            }
            if one_ended {
                // One ended by itself (a bot whose token is refused stays off): the others run
                // on until the leadership goes.
                let _ = leadership.wait_for(|leader| !*leader).await;
            }
            tracing::info!("no longer the leader: the singletons stop here");
            drop(tasks);
        }
    })
}

/// Tasks aborted when this is dropped: with the task that runs them, or when the leadership goes.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// This machine's name (for `GET /api/cluster`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_lock_on_the_same_sqlite_file_is_refused_with_a_clear_message() {
        let database = std::env::temp_dir().join(format!("tgwatch-lock-{}.db", Uuid::new_v4()));
        let first = lock_sqlite_file(&database)
            .await
            .expect("the first instance locks");
        let error = lock_sqlite_file(&database)
            .await
            .expect_err("the second is refused");
        assert!(matches!(error, ClusterError::SqliteInUse { .. }));
        assert!(error.to_string().contains("use PostgreSQL"), "{error}");
        drop(first);
        let again = lock_sqlite_file(&database)
            .await
            .expect("free again once the first lets go");
        drop(again);
        std::fs::remove_file(database).expect("the database file is there");
    }
}
