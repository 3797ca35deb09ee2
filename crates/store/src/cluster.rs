//! Several instances on one database: the instance registry (`cluster_instances`, a heartbeat
//! per instance) and leases (`cluster_leases`: an account, or the leadership, held by one
//! instance until a time).
//!
//! Every time here is the database's own clock ([`database_now`]): the instances' service
//! clocks may run at other speeds or drift apart, the database is the one clock they share.
//! Taking a lease is one conditional UPDATE (or an INSERT that does nothing on conflict), so two
//! instances racing for the same lease cannot both win, on PostgreSQL as on SQLite.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, Statement, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{cluster_instances, cluster_leases},
};

pub use cluster_instances::Model as Instance;
pub use cluster_leases::Model as Lease;

/// Now by the database's clock (PostgreSQL's `clock_timestamp()`); on SQLite, which only one
/// instance may use, this machine's clock. To the microsecond, as PostgreSQL keeps it.
pub async fn database_now(db: &DatabaseConnection) -> Result<DateTime<Utc>, StorageError> {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let row = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT clock_timestamp() AS now",
                ))
                .await
                .doing("reading the database's clock")?
                .ok_or_else(|| {
                    StorageError::Corrupt("SELECT clock_timestamp() gave no row".into())
                })?;
            row.try_get("", "now").doing("reading the database's clock")
        }
        _ => Ok(Utc::now().trunc_subsecs(6)),
    }
}

/// Registers the instance or renews its heartbeat.
pub async fn heartbeat(
    db: &DatabaseConnection,
    instance: &Instance,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let row = cluster_instances::ActiveModel {
        id: Set(instance.id),
        host: Set(instance.host.clone()),
        pid: Set(instance.pid),
        started_at: Set(instance.started_at),
        heartbeat_at: Set(now),
    };
    cluster_instances::Entity::insert(row)
        .on_conflict(
            OnConflict::column(cluster_instances::Column::Id)
                .update_column(cluster_instances::Column::HeartbeatAt)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
        .doing("renewing the instance's heartbeat")?;
    Ok(())
}

/// Deletes the instances whose heartbeat is older than `cutoff` (dead: killed, or cut off), and
/// the leases that expired before it.
pub async fn forget_dead(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
) -> Result<(), StorageError> {
    cluster_instances::Entity::delete_many()
        .filter(cluster_instances::Column::HeartbeatAt.lt(cutoff))
        .exec(db)
        .await
        .doing("forgetting dead instances")?;
    cluster_leases::Entity::delete_many()
        .filter(cluster_leases::Column::ExpiresAt.lt(cutoff))
        .exec(db)
        .await
        .doing("forgetting expired leases")?;
    Ok(())
}

/// Deletes every other instance and its leases: on SQLite, where the file lock proves that
/// nobody else runs, what another instance left behind is a dead instance's.
pub async fn forget_others(db: &DatabaseConnection, me: Uuid) -> Result<(), StorageError> {
    cluster_leases::Entity::delete_many()
        .filter(cluster_leases::Column::InstanceId.ne(me))
        .exec(db)
        .await
        .doing("forgetting the leases of earlier instances")?;
    cluster_instances::Entity::delete_many()
        .filter(cluster_instances::Column::Id.ne(me))
        .exec(db)
        .await
        .doing("forgetting earlier instances")?;
    Ok(())
}

/// The instances whose heartbeat is not older than `since`, oldest first.
pub async fn live_instances(
    db: &DatabaseConnection,
    since: DateTime<Utc>,
) -> Result<Vec<Instance>, StorageError> {
    cluster_instances::Entity::find()
        .filter(cluster_instances::Column::HeartbeatAt.gte(since))
        .order_by_asc(cluster_instances::Column::StartedAt)
        .order_by_asc(cluster_instances::Column::Id)
        .all(db)
        .await
        .doing("listing live instances")
}

/// The leases that have not expired at `now`.
pub async fn valid_leases(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<Vec<Lease>, StorageError> {
    cluster_leases::Entity::find()
        .filter(cluster_leases::Column::ExpiresAt.gte(now))
        .order_by_asc(cluster_leases::Column::Resource)
        .all(db)
        .await
        .doing("listing leases")
}

/// Extends every lease `me` still holds at `now` until `until`. A lease that expired meanwhile
/// stays expired: someone else may have taken it already.
pub async fn renew(
    db: &DatabaseConnection,
    me: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<(), StorageError> {
    cluster_leases::Entity::update_many()
        .col_expr(
            cluster_leases::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(until),
        )
        .filter(cluster_leases::Column::InstanceId.eq(me))
        .filter(cluster_leases::Column::ExpiresAt.gte(now))
        .exec(db)
        .await
        .doing("renewing leases")?;
    Ok(())
}

/// Takes `resource` for `me` until `until` if it is free (never leased, or expired at `now`) or
/// already `me`'s; whether `me` holds it now.
pub async fn try_take(
    db: &DatabaseConnection,
    resource: &str,
    me: Uuid,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let taken_over = cluster_leases::Entity::update_many()
        .col_expr(
            cluster_leases::Column::InstanceId,
            sea_orm::sea_query::Expr::value(me),
        )
        .col_expr(
            cluster_leases::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(until),
        )
        .filter(cluster_leases::Column::Resource.eq(resource))
        .filter(
            sea_orm::Condition::any()
                .add(cluster_leases::Column::InstanceId.eq(me))
                .add(cluster_leases::Column::ExpiresAt.lt(now)),
        )
        .exec(db)
        .await
        .doing("taking over a lease")?;
    if taken_over.rows_affected == 1 {
        return Ok(true);
    }
    let row = cluster_leases::ActiveModel {
        resource: Set(resource.to_owned()),
        instance_id: Set(me),
        expires_at: Set(until),
    };
    let inserted = cluster_leases::Entity::insert(row)
        .on_conflict_do_nothing_on([cluster_leases::Column::Resource])
        .exec_without_returning(db)
        .await
        .doing("taking a lease")?;
    Ok(matches!(inserted, sea_orm::TryInsertResult::Inserted(1)))
}

/// Gives up the leases of `resources` that `me` holds.
pub async fn release(
    db: &DatabaseConnection,
    me: Uuid,
    resources: &[String],
) -> Result<(), StorageError> {
    if resources.is_empty() {
        return Ok(());
    }
    cluster_leases::Entity::delete_many()
        .filter(cluster_leases::Column::InstanceId.eq(me))
        .filter(cluster_leases::Column::Resource.is_in(resources.iter().cloned()))
        .exec(db)
        .await
        .doing("releasing leases")?;
    Ok(())
}

/// Gives up every lease of `me` and removes it from the registry (a clean stop).
pub async fn leave(db: &DatabaseConnection, me: Uuid) -> Result<(), StorageError> {
    cluster_leases::Entity::delete_many()
        .filter(cluster_leases::Column::InstanceId.eq(me))
        .exec(db)
        .await
        .doing("releasing the instance's leases")?;
    cluster_instances::Entity::delete_by_id(me)
        .exec(db)
        .await
        .doing("leaving the registry")?;
    Ok(())
}

/// The PostgreSQL advisory lock key under which instances apply the configuration file one at
/// a time (an arbitrary constant: "tgwatch" in ASCII).
const CONFIG_LOCK_KEY: i64 = 0x0074_6777_6174_6368;

/// Held while this instance applies the configuration: on PostgreSQL a transaction-scoped
/// advisory lock (released by [`ConfigLock::release`], or by the server when the connection
/// dies), so that instances reading the same file apply it one after the other and the second
/// finds nothing left to do. On SQLite, with one instance, nothing.
pub struct ConfigLock(Option<sea_orm::DatabaseTransaction>);

/// Waits until no other instance applies the configuration, and holds the lock.
pub async fn lock_config(db: &DatabaseConnection) -> Result<ConfigLock, StorageError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(ConfigLock(None));
    }
    let txn = sea_orm::TransactionTrait::begin(db)
        .await
        .doing("starting the configuration lock")?;
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [CONFIG_LOCK_KEY.into()],
    ))
    .await
    .doing("taking the configuration lock")?;
    Ok(ConfigLock(Some(txn)))
}

impl ConfigLock {
    pub async fn release(self) -> Result<(), StorageError> {
        if let Some(txn) = self.0 {
            txn.commit()
                .await
                .doing("releasing the configuration lock")?;
        }
        Ok(())
    }
}

/// The outbox rows of `ids` (the events another instance committed and announced), oldest
/// first; ids no longer stored are left out.
pub async fn events_by_ids(
    db: &DatabaseConnection,
    ids: &[String],
) -> Result<Vec<super::entities::events::Model>, StorageError> {
    use super::entities::events;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    events::Entity::find()
        .filter(events::Column::Id.is_in(ids.iter().cloned()))
        .order_by_asc(events::Column::CreatedAt)
        .order_by_asc(events::Column::Id)
        .all(db)
        .await
        .doing("reading announced events")
}
