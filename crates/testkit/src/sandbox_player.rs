//! Plays a [`Scenario`] on the sandbox (the in-process fake Telegram that the real grammers
//! client talks to): its users become sandbox users, contacts of every account when the scenario
//! pushes their changes, and their statuses change at the scenario's times on the service clock.
//!
//! `demo` and the MTProto benchmark use it, so that they run the same scenarios as the scripted
//! Telegram, through real MTProto.

use std::{cmp::Reverse, collections::BinaryHeap};

use chrono::{DateTime, Duration, Utc};
use tgwatch_sandbox::{AccountId, Sandbox, SandboxError, UserStatus};

use crate::scripted::{Scenario, ScenarioUser};
use tgwatch_core::{clock::Clock, presence::Status};

/// Adds the scenario's users to the sandbox (with their status at second 0) and makes the
/// pushed ones contacts of `accounts`.
pub fn populate(
    sandbox: &Sandbox,
    scenario: &Scenario,
    accounts: &[AccountId],
    origin: DateTime<Utc>,
) -> Result<(), SandboxError> {
    for user in &scenario.users {
        sandbox.add_user(
            user.id,
            user.access_hash(),
            user.username.as_deref(),
            user.first_name.as_deref().unwrap_or("User"),
        )?;
        sandbox.set_user_status(user.id, sandbox_status(&user.status_at(0, origin)))?;
        if user.push {
            for account in accounts {
                sandbox.add_contact(*account, user.id)?;
            }
        }
    }
    Ok(())
}

/// Changes statuses as the scenario says, until the sandbox is dropped elsewhere and the task
/// is aborted. Every change is set (so polls see it) and pushed to contacts by the sandbox.
pub fn play(
    sandbox: Sandbox,
    scenario: Scenario,
    clock: Clock,
    origin: DateTime<Utc>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let users: Vec<ScenarioUser> = scenario.users;
        let mut next: BinaryHeap<Reverse<(i64, usize)>> = users
            .iter()
            .enumerate()
            .filter_map(|(index, user)| Some(Reverse((user.next_change_after(0)?, index))))
            .collect();
        while let Some(Reverse((second, index))) = next.pop() {
            clock.sleep_until(origin + Duration::seconds(second)).await;
            let user = &users[index];
            let status = sandbox_status(&user.status_at(second, origin));
            if let Err(error) = sandbox.set_user_status(user.id, status) {
                tracing::warn!(user = user.id, %error, "sandbox: cannot set a status");
            }
            if let Some(after) = user.next_change_after(second) {
                next.push(Reverse((after, index)));
            }
        }
    })
}

fn unix(at: DateTime<Utc>) -> i32 {
    i32::try_from(at.timestamp()).unwrap_or(i32::MAX)
}

/// Our status as the sandbox (Telegram) shows it.
pub fn sandbox_status(status: &Status) -> UserStatus {
    match status {
        Status::Online { expires } => UserStatus::Online {
            expires: unix(*expires),
        },
        Status::Offline {
            was_online: Some(at),
        } => UserStatus::Offline {
            was_online: unix(*at),
        },
        Status::Offline { was_online: None } | Status::Unknown => UserStatus::Empty,
        Status::Recently => UserStatus::Recently,
        Status::LastWeek => UserStatus::LastWeek,
        Status::LastMonth => UserStatus::LastMonth,
    }
}
