//! sea-orm entities, one module per table created by the `migration` crate.
//!
//! Written in the 1.x "compact" format (`DeriveEntityModel` + `enum Relation`), which
//! sea-orm 2 still compiles. Enum-like columns (`status`, `source`, `level`) stay `String`
//! here; the domain layer converts them.
//!
//! Every insert sets every column ([`every_column_on_insert`]): a column left `NotSet` falls to
//! the database's default, and reading the inserted row back then depends on the backend
//! returning that default, which has failed under load ("Missing value for column"). Checking on
//! every insert makes such a gap fail at once, in every test, instead of now and then.

use sea_orm::{ActiveModelTrait, DbErr, EntityName, EntityTrait, IdenStatic, Iterable};

/// Refuses to insert `row` while a column is `NotSet`, naming the columns.
pub fn require_every_column<A: ActiveModelTrait>(row: &A) -> Result<(), DbErr> {
    let missing: Vec<&str> = <A::Entity as EntityTrait>::Column::iter()
        .filter(|column| row.get(*column).is_not_set())
        .map(|column| column.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(DbErr::Custom(format!(
            "insert into `{}` leaves {} unset: set every column",
            <A::Entity as Default>::default().table_name(),
            missing.join(", ")
        )))
    }
}

/// `impl ActiveModelBehavior` that runs [`require_every_column`] before each insert.
macro_rules! every_column_on_insert {
    () => {
        #[async_trait::async_trait]
        impl ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(self, _db: &C, insert: bool) -> Result<Self, DbErr>
            where
                C: ConnectionTrait,
            {
                if insert {
                    super::require_every_column(&self)?;
                }
                Ok(self)
            }
        }
    };
}
pub(crate) use every_column_on_insert;

pub mod account_channel_assignments;
pub mod account_sessions;
pub mod accounts;
pub mod auth_attempts;
pub mod bot_chats;
pub mod bot_messages;
pub mod bot_subscriptions;
pub mod channels;
pub mod cluster_instances;
pub mod cluster_leases;
pub mod events;
pub mod logs;
pub mod message_versions;
pub mod messages;
pub mod online_sessions;
pub mod status_checks;
pub mod telegram_users;
pub mod tracked_users;
pub mod webhook_deliveries;
pub mod webhook_messages;
pub mod webhooks;

#[cfg(test)]
mod tests {
    use sea_orm::ActiveValue::{NotSet, Set};

    use super::*;

    #[test]
    fn an_insert_that_leaves_a_column_to_its_default_is_refused_by_name() {
        let now = chrono::Utc::now();
        let mut row = accounts::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            label: Set("main".into()),
            phone: Set(None),
            username: Set(None),
            telegram_user_id: Set(None),
            api_id: Set(None),
            status: Set(accounts::AccountStatus::Active),
            is_authorized: Set(false),
            max_targets: Set(1000),
            max_channels: Set(100),
            targets_count: Set(0),
            channels_count: Set(0),
            last_active: Set(None),
            status_reason: Set(None),
            source: NotSet,
            created_at: Set(now),
            updated_at: Set(now),
        };
        let error = require_every_column(&row).expect_err("source is not set");
        assert!(error.to_string().contains("accounts"), "{error}");
        assert!(error.to_string().contains("source"), "{error}");
        row.source = Set(tgwatch_core::config::Origin::Api);
        require_every_column(&row).expect("every column set");
    }
}
