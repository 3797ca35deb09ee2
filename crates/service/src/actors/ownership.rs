//! What this instance may run when several share one database: the accounts whose lease it
//! holds (with their people and channels) and, while it is the leader, the people without an
//! account. The FleetSupervisor asks it before it starts an actor; the cluster's heartbeat
//! (`crate::cluster`) keeps it up to date.

use std::{
    collections::HashSet,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use uuid::Uuid;

use tgwatch_core::cluster::LeaseResource;
use tgwatch_store::{self as storage, StorageError};

#[derive(Clone)]
pub struct Ownership {
    db: DatabaseConnection,
    instance_id: Uuid,
    lease: Duration,
    accounts: Arc<RwLock<HashSet<Uuid>>>,
    leader: Arc<watch::Sender<bool>>,
}

impl Ownership {
    pub fn new(db: DatabaseConnection, instance_id: Uuid, lease: Duration) -> Ownership {
        Ownership {
            db,
            instance_id,
            lease,
            accounts: Arc::default(),
            leader: Arc::new(watch::channel(false).0),
        }
    }

    pub fn instance_id(&self) -> Uuid {
        self.instance_id
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Whether this instance holds the account's lease.
    pub fn owns(&self, account_id: Uuid) -> bool {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&account_id)
    }

    /// The accounts this instance holds.
    pub fn accounts(&self) -> HashSet<Uuid> {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The accounts held from now on (the heartbeat's round read them from the database).
    pub(crate) fn set_accounts(&self, accounts: HashSet<Uuid>) {
        *self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner) = accounts;
    }

    /// Takes the account's lease now if nobody holds it (an account just added, logged in or
    /// re-enabled here starts at once, without waiting for the next heartbeat); whether this
    /// instance holds it.
    pub async fn claim(&self, account_id: Uuid) -> Result<bool, StorageError> {
        let now = storage::cluster::database_now(&self.db).await?;
        let until = now + self.lease;
        let taken = storage::cluster::try_take(
            &self.db,
            &LeaseResource::Account(account_id).key(),
            self.instance_id,
            now,
            until,
        )
        .await?;
        if taken {
            self.accounts
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(account_id);
        }
        Ok(taken)
    }

    /// Whether this instance runs the singletons (bot polling, periodic jobs).
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Follows the leadership: true while this instance is the leader.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    pub(crate) fn set_leader(&self, leader: bool) {
        self.leader.send_if_modified(|current| {
            let changed = *current != leader;
            *current = leader;
            changed
        });
    }
}
