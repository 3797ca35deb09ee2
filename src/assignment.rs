//! Which account gets new work: the least-loaded usable one that still has room.

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

/// Why no account can take new work, for an error an operator acts on: there are no accounts,
/// or none can work (each named with its state: not logged in, banned, ...), or every usable
/// one is full (`at_limit` tells, and `limit` names the setting to raise).
pub fn why_no_account(
    accounts: &[crate::storage::entities::accounts::Model],
    at_limit: impl Fn(&crate::storage::entities::accounts::Model) -> bool,
    limit: &str,
) -> String {
    use crate::storage::accounts::AccountStatus;
    if accounts.is_empty() {
        return "there is no account: add one to [[accounts]] or with POST /api/accounts".into();
    }
    let usable: Vec<_> = accounts
        .iter()
        .filter(|account| AccountStatus::is_usable(&account.status))
        .collect();
    if usable.is_empty() {
        let states: Vec<String> = accounts
            .iter()
            .map(|account| match &account.status_reason {
                Some(reason) => format!("`{}` is {} ({reason})", account.label, account.status),
                None => format!("`{}` is {}", account.label, account.status),
            })
            .collect();
        return format!("no account can work: {}", states.join(", "));
    }
    if usable.iter().all(|account| at_limit(account)) {
        return format!("every usable account is at its {limit}: add an account or raise {limit}");
    }
    // Usable accounts with room exist; they were excluded (a move away from them).
    "the only accounts with room are the ones the work is moving away from".into()
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
