//! Whether an account's status pushes still reach it.
//!
//! Telegram sends each authorization's pushes to its most recently active connection. When
//! another client uses the same authorization (a session copied to a second program), the pushes
//! go there whenever that client was active last, and the service learns the changes only from
//! its polls, minutes late. Nothing tells a client this; it shows as status changes that polls
//! find but no push reported. [`PushWatch`] counts those among the last changes of people whose
//! changes were pushed before (Telegram pushes statuses of contacts only).

use std::collections::{HashMap, HashSet, VecDeque};

use super::StatusKind;

/// How many of the latest status changes the judgement looks at.
const WINDOW: usize = 5;
/// Changes found by polls, among the window, that mean the pushes go elsewhere.
const MISSED_TO_STOP: usize = 3;

/// What the account's pushes look like lately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PushState {
    /// No person's change has been pushed yet: nothing to compare with.
    Unknown,
    Arriving,
    /// Polls keep finding changes that were never pushed.
    Stopped,
}

impl PushState {
    /// What an operator should read in the health report.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            PushState::Stopped => Some(
                "status pushes stopped arriving: another client logged in with this account's \
                 session is probably taking them; changes are seen only by polls",
            ),
            PushState::Unknown | PushState::Arriving => None,
        }
    }
}

/// How a status change reached the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Pushed,
    /// Found by a poll, though pushes of this person arrived before.
    Missed,
}

/// The latest status changes of the people an account watches, by how they arrived.
#[derive(Debug, Default)]
pub struct PushWatch {
    /// The status last seen of each person (by Telegram id), by push or poll.
    last_seen: HashMap<i64, StatusKind>,
    /// People whose changes were pushed at least once: only their polled changes count.
    pushed_before: HashSet<i64>,
    latest: VecDeque<Change>,
}

impl PushWatch {
    /// A status pushed for `user_id`.
    pub fn pushed(&mut self, user_id: i64, status: StatusKind) -> PushState {
        self.pushed_before.insert(user_id);
        if self.last_seen.insert(user_id, status) != Some(status) {
            self.note(Change::Pushed);
        }
        self.state()
    }

    /// A status polled for `user_id`.
    pub fn polled(&mut self, user_id: i64, status: StatusKind) -> PushState {
        let before = self.last_seen.insert(user_id, status);
        let changed = before.is_some_and(|before| before != status);
        if changed && self.pushed_before.contains(&user_id) {
            self.note(Change::Missed);
        }
        self.state()
    }

    /// After a gap in the pushes (a reconnect), changes found by the next polls were lost with
    /// the connection, not taken by another client: forget what was seen before it.
    pub fn gap(&mut self) {
        self.last_seen.clear();
    }

    pub fn state(&self) -> PushState {
        if self.pushed_before.is_empty() {
            return PushState::Unknown;
        }
        let missed = self
            .latest
            .iter()
            .filter(|change| **change == Change::Missed)
            .count();
        if missed >= MISSED_TO_STOP {
            PushState::Stopped
        } else {
            PushState::Arriving
        }
    }

    fn note(&mut self, change: Change) {
        if self.latest.len() == WINDOW {
            self.latest.pop_front();
        }
        self.latest.push_back(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StatusKind::{Offline, Online};

    const ALICE: i64 = 1;
    const BOB: i64 = 2;

    #[test]
    fn nothing_is_judged_before_a_first_push() {
        let mut watch = PushWatch::default();
        for status in [Online, Offline, Online, Offline, Online] {
            assert_eq!(watch.polled(ALICE, status), PushState::Unknown);
        }
    }

    #[test]
    fn pushes_that_report_every_change_are_arriving() {
        let mut watch = PushWatch::default();
        for status in [Online, Offline, Online, Offline] {
            assert_eq!(watch.pushed(ALICE, status), PushState::Arriving);
            // The next poll sees what the push said: no change.
            assert_eq!(watch.polled(ALICE, status), PushState::Arriving);
        }
    }

    #[test]
    fn three_changes_found_only_by_polls_mean_the_pushes_stopped() {
        let mut watch = PushWatch::default();
        watch.pushed(ALICE, Online);
        assert_eq!(watch.polled(ALICE, Offline), PushState::Arriving);
        assert_eq!(watch.polled(ALICE, Online), PushState::Arriving);
        assert_eq!(watch.polled(ALICE, Offline), PushState::Stopped);
        assert_eq!(
            PushState::Stopped
                .reason()
                .map(|reason| reason.contains("another client")),
            Some(true)
        );
    }

    #[test]
    fn polls_that_find_no_change_do_not_count() {
        let mut watch = PushWatch::default();
        watch.pushed(ALICE, Online);
        for _ in 0..10 {
            assert_eq!(watch.polled(ALICE, Online), PushState::Arriving);
        }
    }

    #[test]
    fn changes_of_people_never_pushed_do_not_count() {
        // Telegram pushes statuses of contacts only: polls are the only news of the others.
        let mut watch = PushWatch::default();
        watch.pushed(ALICE, Online);
        for status in [Online, Offline, Online, Offline, Online] {
            assert_eq!(watch.polled(BOB, status), PushState::Arriving);
        }
    }

    #[test]
    fn changes_found_after_a_gap_do_not_count() {
        let mut watch = PushWatch::default();
        watch.pushed(ALICE, Online);
        watch.pushed(BOB, Online);
        watch.polled(ALICE, Offline);
        watch.polled(BOB, Offline);
        watch.gap();
        // The catch-up polls after a reconnect find what the lost connection missed.
        assert_eq!(watch.polled(ALICE, Online), PushState::Arriving);
        assert_eq!(watch.polled(BOB, Online), PushState::Arriving);
    }

    #[test]
    fn pushes_arriving_again_end_the_stop() {
        let mut watch = PushWatch::default();
        watch.pushed(ALICE, Online);
        for status in [Offline, Online, Offline] {
            watch.polled(ALICE, status);
        }
        assert_eq!(watch.state(), PushState::Stopped);
        assert_eq!(watch.pushed(ALICE, Online), PushState::Stopped);
        assert_eq!(watch.pushed(ALICE, Offline), PushState::Stopped);
        // The window now holds two pushed changes and two of the three missed ones.
        assert_eq!(watch.pushed(ALICE, Online), PushState::Arriving);
    }
}
