//! The demo's past: a week of each simulated person's habits, written to the database when the
//! demo starts, so that timelines, heatmaps and statistics are full from the first second.
//!
//! Every day of the week before the demo starts replays the person's daily spans, each moved by
//! up to 20 minutes and now and then skipped, so that no two days look alike. The spans become
//! the status changes Telegram would have pushed (online until the span's end, then offline),
//! folded into sessions by the gap rule like any other observations.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use sea_orm::DatabaseConnection;
use tgwatch_core::presence::{Observation, Source, Status, sessions};
use tgwatch_store::{
    self as storage, StorageError,
    observations::{NewObservation, PendingWrites},
};
use uuid::Uuid;

use crate::scripted::{Scenario, ScenarioUser};

/// Days of history.
pub const HISTORY_DAYS: i64 = 7;

/// People written per transaction.
const PEOPLE_PER_BATCH: usize = 8;

/// How far a day's span moves from the person's habit, at most, in seconds.
const JITTER_SECONDS: i64 = 1_200;

/// The status changes of `user` over the [`HISTORY_DAYS`] days before `origin`, oldest first:
/// online at the start of each span (until its end), offline at its end, and a last offline
/// poll a minute before `origin` that closes the last session. Nothing for a person without a
/// daily habit or who hides the status.
pub fn past_week(user: &ScenarioUser, origin: DateTime<Utc>) -> Vec<Observation> {
    let Some(period) = user.repeat_every.filter(|_| !user.hidden) else {
        return Vec::new();
    };
    let seed = u64::try_from(user.id).unwrap_or_default();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut observations = Vec::new();
    let mut last_online = None;
    for day in (1..=HISTORY_DAYS).rev() {
        let day_start = origin - Duration::seconds(day * period);
        for [from, to] in &user.online {
            let shift = rng.random_range(-JITTER_SECONDS..=JITTER_SECONDS);
            if rng.random_bool(0.15) {
                continue;
            }
            let start = day_start + Duration::seconds(from + shift);
            let end = day_start + Duration::seconds(to + shift);
            // The moved span must stay in the past and after the previous one.
            if end >= origin - Duration::minutes(5) || last_online.is_some_and(|last| start <= last)
            {
                continue;
            }
            observations.push(Observation {
                observed_at: start,
                status: Status::Online { expires: end },
            });
            observations.push(Observation {
                observed_at: end,
                status: Status::Offline {
                    was_online: Some(end),
                },
            });
            last_online = Some(end);
        }
    }
    if last_online.is_some() {
        observations.push(Observation {
            observed_at: origin - Duration::minutes(1),
            status: Status::Offline {
                was_online: last_online,
            },
        });
    }
    observations
}

/// Waits until the service tracks the scenario's people (it resolves them at start), then
/// writes their past week with its sessions, [`PEOPLE_PER_BATCH`] people per transaction. No
/// events: webhooks and the bot hear only of what happens from now on. Returns how many
/// sessions were written; people not tracked within `patience` are left without a past.
pub async fn prefill(
    db: &DatabaseConnection,
    scenario: &Scenario,
    gap: Duration,
    origin: DateTime<Utc>,
    patience: StdDuration,
) -> Result<usize, StorageError> {
    let wanted: Vec<&ScenarioUser> = scenario
        .users
        .iter()
        .filter(|user| user.username.is_some())
        .collect();
    let deadline = tokio::time::Instant::now() + patience;
    let tracked = loop {
        let tracked = storage::tracked_users::active(db).await?;
        if tracked.len() >= wanted.len() || tokio::time::Instant::now() >= deadline {
            break tracked;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    let mut written = 0;
    for batch in wanted.chunks(PEOPLE_PER_BATCH) {
        let mut writes = PendingWrites::default();
        for user in batch {
            let Some(row) = tracked.iter().find(|row| {
                row.username.as_deref().map(str::to_lowercase)
                    == user.username.as_deref().map(str::to_lowercase)
            }) else {
                tracing::warn!(username = ?user.username, "demo history: the person is not tracked yet; no past for them");
                continue;
            };
            let observations = past_week(user, origin);
            let (folded, _) = sessions::fold(observations.clone(), gap);
            written += folded.len();
            let count = observations.len();
            for (index, observation) in observations.into_iter().enumerate() {
                writes.push(NewObservation {
                    id: Uuid::now_v7(),
                    tracked_user_id: row.id,
                    account_id: row.account_id,
                    observation: observation.at_stored_precision(),
                    source: if index + 1 == count {
                        Source::Poll
                    } else {
                        Source::Push
                    },
                    recorded_at: observation.observed_at,
                    // The sessions go with the person's last observation.
                    sessions: if index + 1 == count {
                        folded.clone()
                    } else {
                        Vec::new()
                    },
                    events: Vec::new(),
                });
            }
        }
        storage::observations::write(db, &writes).await?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn habit() -> ScenarioUser {
        ScenarioUser {
            id: 100_007,
            username: Some("user00007".into()),
            first_name: None,
            online: vec![[3_600, 7_200], [7_260, 7_500], [40_000, 43_000]],
            repeat_every: Some(86_400),
            hidden: false,
            push: false,
        }
    }

    #[test]
    fn a_week_of_habits_folds_into_closed_sessions_every_day_before_the_start() {
        let origin = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let observations = past_week(&habit(), origin);
        assert!(observations.windows(2).all(|pair| pair[0] <= pair[1]));
        assert!(
            observations
                .iter()
                .all(|observation| observation.observed_at < origin)
        );
        let (folded, _) = sessions::fold(observations, Duration::seconds(180));
        assert!(
            folded.iter().all(|session| !session.is_open()),
            "{folded:?}"
        );
        // At most three sessions a day (fewer when the second span comes back within the gap
        // of the first, or a span is skipped).
        assert!((7..=21).contains(&folded.len()), "{}", folded.len());
        let first = folded.first().unwrap().started_at;
        assert!(
            origin - first >= Duration::days(6),
            "history reaches back a week: {first}"
        );
        // Every day of the week has a session.
        for day in 1..=HISTORY_DAYS {
            let day_start = origin - Duration::days(day);
            assert!(
                folded.iter().any(|session| session.started_at
                    >= day_start - Duration::seconds(JITTER_SECONDS)
                    && session.started_at < day_start + Duration::days(1)),
                "day -{day}: {folded:?}"
            );
        }
    }

    #[test]
    fn hidden_people_and_people_without_habits_have_no_past() {
        let origin = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let hidden = ScenarioUser {
            hidden: true,
            ..habit()
        };
        assert!(past_week(&hidden, origin).is_empty());
        let once = ScenarioUser {
            repeat_every: None,
            ..habit()
        };
        assert!(past_week(&once, origin).is_empty());
    }
}
