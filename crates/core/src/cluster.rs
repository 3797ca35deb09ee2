//! Several instances on one database: what a lease names, and how the accounts are shared out.
//! Pure: the service reads the registry and the leases, asks [`plan_accounts`] what to take and
//! what to give up, and acts on the answer.

use std::collections::HashMap;

use uuid::Uuid;

/// What a lease holds (`cluster_leases.resource`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaseResource {
    /// An account: its actor, its tracked people and its channels run on the holder.
    Account(Uuid),
    /// The singletons that must run once in the whole cluster: the bot's long polling
    /// (Telegram allows one poller per token) and the periodic jobs.
    Leader,
}

const ACCOUNT_PREFIX: &str = "account:";
const LEADER: &str = "leader";

impl LeaseResource {
    /// The key stored in `cluster_leases.resource`.
    pub fn key(self) -> String {
        match self {
            LeaseResource::Account(id) => format!("{ACCOUNT_PREFIX}{id}"),
            LeaseResource::Leader => LEADER.to_owned(),
        }
    }

    pub fn parse(key: &str) -> Option<LeaseResource> {
        if key == LEADER {
            return Some(LeaseResource::Leader);
        }
        let id = key.strip_prefix(ACCOUNT_PREFIX)?;
        Uuid::parse_str(id).ok().map(LeaseResource::Account)
    }
}

/// How many of `accounts` the instance at `index` (in registry order) should hold among
/// `instances` live ones: an equal share, one more for the first `accounts % instances`.
pub fn fair_share(index: usize, instances: usize, accounts: usize) -> usize {
    if instances == 0 {
        return accounts;
    }
    accounts / instances + usize::from(index < accounts % instances)
}

/// What one instance should do with the account leases in one round.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AccountPlan {
    /// Free accounts (never leased, or the lease expired) to take.
    pub take: Vec<Uuid>,
    /// Accounts of its own to hand over, because it holds more than its share.
    pub release: Vec<Uuid>,
}

/// The round of instance `me`: `instances` are the live ones in registry order, `accounts` the
/// accounts that need an owner, `holders` the instance holding a valid lease on an account.
///
/// Below its share, an instance takes free accounts: the free ones are dealt out in registry
/// order, each instance its shortfall, so that instances looking at the same leases never reach
/// for the same account (a race that happens anyway is settled by the database: one wins).
/// Above its share, it releases the surplus, which an instance below its share takes at its next
/// round: that is how a new instance gets its share and how the survivors of a dead one share its
/// accounts.
pub fn plan_accounts(
    me: Uuid,
    instances: &[Uuid],
    accounts: &[Uuid],
    holders: &HashMap<Uuid, Uuid>,
) -> AccountPlan {
    let mut members = instances.to_vec();
    if !members.contains(&me) {
        // Not registered yet (its first heartbeat failed): the last of one more.
        members.push(me);
    }
    let held_by = |instance: Uuid| {
        accounts
            .iter()
            .filter(|account| holders.get(account) == Some(&instance))
            .count()
    };
    let free: Vec<Uuid> = accounts
        .iter()
        .copied()
        .filter(|account| !holders.contains_key(account))
        .collect();
    let mut plan = AccountPlan::default();
    let mut dealt = 0;
    for (index, instance) in members.iter().enumerate() {
        let share = fair_share(index, members.len(), accounts.len());
        let held = held_by(*instance);
        if *instance != me {
            dealt += share.saturating_sub(held);
            continue;
        }
        if held < share {
            plan.take = free
                .iter()
                .skip(dealt)
                .take(share - held)
                .copied()
                .collect();
        } else if held > share {
            let mut mine: Vec<Uuid> = accounts
                .iter()
                .copied()
                .filter(|account| holders.get(account) == Some(&me))
                .collect();
            plan.release = mine.split_off(share);
        }
        break;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Uuid> {
        (1..=n).map(Uuid::from_u128).collect()
    }

    #[test]
    fn resources_read_back_as_written() {
        let account = LeaseResource::Account(Uuid::from_u128(7));
        assert_eq!(LeaseResource::parse(&account.key()), Some(account));
        assert_eq!(
            LeaseResource::parse(&LeaseResource::Leader.key()),
            Some(LeaseResource::Leader)
        );
        assert_eq!(LeaseResource::parse("account:nope"), None);
        assert_eq!(LeaseResource::parse("other"), None);
    }

    #[test]
    fn shares_add_up_to_every_account_and_differ_by_one_at_most() {
        for instances in 1..6 {
            for accounts in 0..20 {
                let shares: Vec<usize> = (0..instances)
                    .map(|index| fair_share(index, instances, accounts))
                    .collect();
                assert_eq!(shares.iter().sum::<usize>(), accounts);
                let (min, max) = (shares.iter().min(), shares.iter().max());
                assert!(max.zip(min).is_some_and(|(max, min)| max - min <= 1));
            }
        }
        assert_eq!(fair_share(0, 0, 5), 5);
    }

    #[test]
    fn a_lone_instance_takes_every_free_account() {
        let me = Uuid::from_u128(100);
        let accounts = ids(5);
        let plan = plan_accounts(me, &[me], &accounts, &HashMap::new());
        assert_eq!(plan.take, accounts);
        assert!(plan.release.is_empty());
    }

    #[test]
    fn a_new_instance_gets_its_share_from_the_one_that_held_everything() {
        let (old, new) = (Uuid::from_u128(100), Uuid::from_u128(200));
        let accounts = ids(5);
        let holders: HashMap<Uuid, Uuid> = accounts.iter().map(|a| (*a, old)).collect();
        let instances = [old, new];
        // The old one releases what is above its share (3 of 5)...
        let plan = plan_accounts(old, &instances, &accounts, &holders);
        assert_eq!(plan.release, accounts[3..].to_vec());
        assert!(plan.take.is_empty());
        // ...and the new one takes them once they are free.
        let mut holders = holders;
        for released in &plan.release {
            holders.remove(released);
        }
        let plan = plan_accounts(new, &instances, &accounts, &holders);
        assert_eq!(plan.take.len(), 2);
        assert!(
            plan.take
                .iter()
                .all(|account| !holders.contains_key(account))
        );
    }

    #[test]
    fn survivors_share_a_dead_instances_accounts() {
        let (a, b) = (Uuid::from_u128(100), Uuid::from_u128(200));
        let accounts = ids(9);
        // Three each; a third instance died and its leases expired: its accounts have no holder.
        let mut holders = HashMap::new();
        for (index, account) in accounts.iter().enumerate() {
            match index / 3 {
                0 => holders.insert(*account, a),
                1 => holders.insert(*account, b),
                _ => None,
            };
        }
        let plan_a = plan_accounts(a, &[a, b], &accounts, &holders);
        let plan_b = plan_accounts(b, &[a, b], &accounts, &holders);
        // Shares 5 and 4 of 9: a takes two, b takes one, starting at different places.
        assert_eq!((plan_a.take.len(), plan_b.take.len()), (2, 1));
        assert!(
            !plan_b
                .take
                .iter()
                .any(|account| plan_a.take.contains(account))
        );
        assert!(plan_a.release.is_empty() && plan_b.release.is_empty());
    }

    #[test]
    fn an_instance_at_its_share_does_nothing() {
        let (a, b) = (Uuid::from_u128(100), Uuid::from_u128(200));
        let accounts = ids(4);
        let holders: HashMap<Uuid, Uuid> = accounts
            .iter()
            .enumerate()
            .map(|(index, account)| (*account, if index < 2 { a } else { b }))
            .collect();
        assert_eq!(
            plan_accounts(a, &[a, b], &accounts, &holders),
            AccountPlan::default()
        );
    }

    #[test]
    fn an_unregistered_instance_counts_itself_last() {
        let (a, me) = (Uuid::from_u128(100), Uuid::from_u128(200));
        let accounts = ids(4);
        let plan = plan_accounts(me, &[a], &accounts, &HashMap::new());
        assert_eq!(plan.take.len(), 2);
    }
}
