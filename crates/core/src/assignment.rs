//! Which account gets new work: the one asked for if it can work, else the least-loaded usable
//! one that still has room. One rule for tracked users and channels.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub account_id: Uuid,
    pub load: i32,
    pub capacity: i32,
    pub usable: bool,
}

/// The candidate with the lowest load relative to its capacity; ties go to the lower absolute
/// load, then to the older account (lower UUID v7), so the choice is deterministic.
pub fn least_loaded(candidates: &[Candidate]) -> Option<Uuid> {
    candidates
        .iter()
        .filter(|c| c.usable && c.load < c.capacity)
        .min_by(|a, b| {
            // load_a / cap_a < load_b / cap_b without floating point.
            let ratio = (i64::from(a.load) * i64::from(b.capacity))
                .cmp(&(i64::from(b.load) * i64::from(a.capacity)));
            ratio
                .then(a.load.cmp(&b.load))
                .then(a.account_id.cmp(&b.account_id))
        })
        .map(|c| c.account_id)
}

/// An account as the chooser sees it: plain data from the `accounts` table.
#[derive(Clone, Copy, Debug)]
pub struct Account<'a> {
    pub id: Uuid,
    pub label: &'a str,
    pub status: AccountStatus,
    pub status_reason: Option<&'a str>,
    /// Work it has now (tracked users, or channels).
    pub load: i32,
    /// The most work it may have (`max_targets`, or `max_channels`).
    pub capacity: i32,
}

/// Why [`choose`] found no account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The wanted account does not exist.
    Unknown(Uuid),
    /// The wanted account cannot work: its label and status.
    Unusable { label: String, status: String },
    /// No account can take the work; why, for an operator to act on ([`why_no_account`]).
    NoneAvailable(String),
}

/// The one rule for giving work to an account: the `wanted` account if it can work (even when
/// full: an operator asked for it), else the least-loaded usable account with room that is not
/// one of `excluded`. `limit` names the setting that bounds the load (`max_targets`,
/// `max_channels`), for the refusal.
pub fn choose(
    accounts: &[Account<'_>],
    wanted: Option<Uuid>,
    excluded: &[Uuid],
    limit: &str,
) -> Result<Uuid, Refusal> {
    if let Some(id) = wanted {
        let account = accounts
            .iter()
            .find(|account| account.id == id)
            .ok_or(Refusal::Unknown(id))?;
        if !account.status.is_usable() {
            return Err(Refusal::Unusable {
                label: account.label.to_owned(),
                status: account.status.to_string(),
            });
        }
        return Ok(id);
    }
    let candidates: Vec<Candidate> = accounts
        .iter()
        .map(|account| Candidate {
            account_id: account.id,
            load: account.load,
            capacity: account.capacity,
            usable: account.status.is_usable() && !excluded.contains(&account.id),
        })
        .collect();
    least_loaded(&candidates).ok_or_else(|| Refusal::NoneAvailable(why_no_account(accounts, limit)))
}

/// Why no account can take new work, for an error an operator acts on: there are no accounts,
/// or none can work (each named with its state: not logged in, banned, ...), or every usable
/// one is full (`limit` names the setting to raise).
pub fn why_no_account(accounts: &[Account<'_>], limit: &str) -> String {
    if accounts.is_empty() {
        return "there is no account: add one to [[accounts]] or with POST /api/accounts".into();
    }
    let usable: Vec<_> = accounts
        .iter()
        .filter(|account| account.status.is_usable())
        .collect();
    if usable.is_empty() {
        let states: Vec<String> = accounts
            .iter()
            .map(|account| match account.status_reason {
                Some(reason) => format!("`{}` is {} ({reason})", account.label, account.status),
                None => format!("`{}` is {}", account.label, account.status),
            })
            .collect();
        return format!("no account can work: {}", states.join(", "));
    }
    if usable
        .iter()
        .all(|account| account.load >= account.capacity)
    {
        return format!("every usable account is at its {limit}: add an account or raise {limit}");
    }
    // Usable accounts with room exist; they were excluded (a move away from them).
    "the only accounts with room are the ones the work is moving away from".into()
}

/// The state of an account (`accounts.status`, stored as its `as_str` text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "sea-orm",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "Text")
)]
pub enum AccountStatus {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "active"))]
    Active,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "banned"))]
    Banned,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "limited"))]
    Limited,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "inactive"))]
    Inactive,
}

impl AccountStatus {
    pub const ALL: [AccountStatus; 4] = [
        AccountStatus::Active,
        AccountStatus::Banned,
        AccountStatus::Limited,
        AccountStatus::Inactive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Banned => "banned",
            AccountStatus::Limited => "limited",
            AccountStatus::Inactive => "inactive",
        }
    }

    /// Whether the account may be given work: a limited account (FLOOD_WAIT) comes back by itself.
    pub fn is_usable(self) -> bool {
        matches!(self, AccountStatus::Active | AccountStatus::Limited)
    }
}

impl std::fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(n: u128, load: i32, capacity: i32, usable: bool) -> Candidate {
        Candidate {
            account_id: Uuid::from_u128(n),
            load,
            capacity,
            usable,
        }
    }

    #[test]
    fn picks_the_lowest_share_of_capacity() {
        let candidates = [
            candidate(1, 50, 100, true),
            candidate(2, 300, 1000, true),
            candidate(3, 10, 100, true),
        ];
        assert_eq!(least_loaded(&candidates), Some(Uuid::from_u128(3)));
    }

    #[test]
    fn skips_full_and_unusable_accounts() {
        let candidates = [
            candidate(1, 100, 100, true),
            candidate(2, 0, 100, false),
            candidate(3, 99, 100, true),
        ];
        assert_eq!(least_loaded(&candidates), Some(Uuid::from_u128(3)));
        assert_eq!(least_loaded(&candidates[..2]), None);
        assert_eq!(least_loaded(&[]), None);
    }

    #[test]
    fn ties_are_broken_deterministically() {
        let candidates = [candidate(2, 0, 10, true), candidate(1, 0, 10, true)];
        assert_eq!(least_loaded(&candidates), Some(Uuid::from_u128(1)));
    }
}
