//! Roles and permissions of the people who talk to the bot (seed 002 `TelegramUser.role`, seed
//! 004's permission lists). Pure: the bot and the API both check through here.

use serde::{Deserialize, Serialize};

/// A person's role, weakest first: a role can do everything the roles before it can.
///
/// - `banned`: ignored by the bot (no answer at all).
/// - `user`: tracking commands (`/status`, `/stats`, `/track`, `/untrack`, `/list`, `/notify`,
///   `/digest`, `/channels`) and notifications in the chats they registered.
/// - `vip`, `moderator`: as `user` in the bot; the Mini App gives them more (with permissions).
/// - `admin`: also `/accounts`, and alerts (`account_banned`, `alert`) in their chats.
///
/// Stored as its `as_str` text (`telegram_users.role`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "sea-orm",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "Text")
)]
pub enum Role {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "banned"))]
    Banned,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "user"))]
    User,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "vip"))]
    Vip,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "moderator"))]
    Moderator,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "admin"))]
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Banned,
        Role::User,
        Role::Vip,
        Role::Moderator,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Banned => "banned",
            Role::User => "user",
            Role::Vip => "vip",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self != Role::Banned && self >= needed
    }
}

/// The role that applies: `bot.admin_ids` make an admin whatever is stored; no stored role
/// counts as banned (fail closed).
pub fn effective_role(telegram_user_id: i64, stored: Option<Role>, admin_ids: &[i64]) -> Role {
    if admin_ids.contains(&telegram_user_id) {
        return Role::Admin;
    }
    stored.unwrap_or(Role::Banned)
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PermissionsError {
    #[error("at most {MAX_PERMISSIONS} permissions")]
    TooMany,
    #[error(
        "`{0}` is not a permission name (1 to 64 of a-z, 0-9, `_`, `.`, `:` and `-`, e.g. \"broadcast\")"
    )]
    BadName(String),
}

pub const MAX_PERMISSIONS: usize = 32;

/// Checks a list of permission names and returns it sorted without repeats, so equal sets are
/// stored equally.
pub fn normalize_permissions(names: Vec<String>) -> Result<Vec<String>, PermissionsError> {
    let mut names: Vec<String> = names.into_iter().map(|n| n.trim().to_owned()).collect();
    names.sort();
    names.dedup();
    if names.len() > MAX_PERMISSIONS {
        return Err(PermissionsError::TooMany);
    }
    if let Some(bad) = names.iter().find(|name| {
        name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'_' | b'.' | b':' | b'-')
            })
    }) {
        return Err(PermissionsError::BadName(bad.clone()));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_banned_allows_nothing() {
        assert!(Role::Admin.allows(Role::User));
        assert!(Role::Vip.allows(Role::User));
        assert!(Role::User.allows(Role::User));
        assert!(!Role::User.allows(Role::Admin));
        assert!(!Role::Banned.allows(Role::Banned));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn config_admins_win_and_unknown_roles_fail_closed() {
        assert_eq!(effective_role(7, Some(Role::Banned), &[7]), Role::Admin);
        assert_eq!(effective_role(8, Some(Role::Vip), &[7]), Role::Vip);
        assert_eq!(Role::parse("superuser"), None);
        assert_eq!(effective_role(8, None, &[]), Role::Banned);
    }

    #[test]
    fn permissions_are_checked_and_normalized() {
        assert_eq!(
            normalize_permissions(vec!["pin".into(), "broadcast".into(), "pin".into()]),
            Ok(vec!["broadcast".to_owned(), "pin".to_owned()])
        );
        assert_eq!(
            normalize_permissions(vec!["Broadcast!".into()]),
            Err(PermissionsError::BadName("Broadcast!".into()))
        );
        assert_eq!(
            normalize_permissions((0..40).map(|i| format!("p{i}")).collect()),
            Err(PermissionsError::TooMany)
        );
    }
}
