//! The gap rule: folding observations into online sessions.
//!
//! A session is a span of time in which the user was known to be online, where offline spells
//! shorter than `gap` do not count as an end (seed 000: network blips and MTProto delays are not
//! real departures). A spell of exactly `gap` or longer ends the session.
//!
//! The evidence each observation gives:
//! - `Online { expires }` at `t`: online from `t`, and (unless later evidence cuts it) until
//!   `expires`.
//! - `Offline { was_online: w }` at `t`: last online at `w` (never later than `t`), offline since.
//!   It cuts a session that was presumed to last beyond `w`, and it reveals a visit between two
//!   polls that no poll saw.
//! - Hidden statuses (recently / last week / last month) and unknown: no evidence either way.
//!
//! A session ends at the last moment the user was known online, not at the poll that noticed.
//! Closing is decided by observation time only (an observation at least `gap` after the last
//! online moment), never by the wall clock, so that folding a user's whole history again gives
//! exactly what the live fold gave. The live fold must see observations in time order;
//! [`SessionFolder::apply`] says [`Applied::OutOfOrder`] otherwise, and the caller folds the
//! stored history again with [`fold`].

use chrono::{DateTime, Duration, Utc};

use super::{Observation, Status};

/// One online session. `ended_at` is `None` while the session may still go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    pub started_at: DateTime<Utc>,
    /// The last moment the user is known (or, for `Online { expires }`, presumed) online.
    pub last_online_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Session {
    fn starting(at: DateTime<Utc>, until: DateTime<Utc>) -> Session {
        Session {
            started_at: at,
            last_online_at: until.max(at),
            ended_at: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }

    /// When the session ends as known at `now`: an open session's presumed end (an `expires` in
    /// the future) is not counted beyond `now`.
    pub fn end_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self.ended_at {
            Some(ended_at) => ended_at,
            None => self.last_online_at.min(now).max(self.started_at),
        }
    }

    /// Length of the session as known at `now`.
    pub fn duration_at(&self, now: DateTime<Utc>) -> Duration {
        self.end_at(now) - self.started_at
    }
}

/// What happened to a session; every variant carries the session as it is now, which the storage
/// writes keyed by (tracked user, `started_at`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionChange {
    Opened(Session),
    Extended(Session),
    Closed(Session),
}

impl SessionChange {
    pub fn session(&self) -> &Session {
        match self {
            SessionChange::Opened(session)
            | SessionChange::Extended(session)
            | SessionChange::Closed(session) => session,
        }
    }
}

/// The result of offering one observation to the live fold.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    Changes(Vec<SessionChange>),
    /// The same observation as the last one: nothing to do.
    Duplicate,
    /// Older than the last observation applied: fold the stored history again.
    OutOfOrder,
}

/// The state of the gap rule for one user: the open session and what the last observation was.
#[derive(Clone, Debug)]
pub struct SessionFolder {
    gap: Duration,
    last_observation: Option<Observation>,
    /// When an `Online` status was last observed: the best end for a session cut by an
    /// `Offline` status that does not say when the user left.
    last_seen_online: Option<DateTime<Utc>>,
    open: Option<Session>,
}

impl SessionFolder {
    pub fn new(gap: Duration) -> SessionFolder {
        SessionFolder {
            gap,
            last_observation: None,
            last_seen_online: None,
            open: None,
        }
    }

    /// Continues a fold from what was stored: the session still open, the newest observation
    /// and the newest `Online` sighting.
    pub fn resume(
        gap: Duration,
        open: Option<Session>,
        last_observation: Option<Observation>,
        last_seen_online: Option<DateTime<Utc>>,
    ) -> SessionFolder {
        SessionFolder {
            gap,
            last_observation,
            last_seen_online,
            open,
        }
    }

    /// The session that may still go on, if any.
    pub fn open_session(&self) -> Option<&Session> {
        self.open.as_ref()
    }

    pub fn last_observation(&self) -> Option<&Observation> {
        self.last_observation.as_ref()
    }

    pub fn apply(&mut self, observation: Observation) -> Applied {
        let t = observation.observed_at;
        if let Some(last) = self.last_observation {
            if t < last.observed_at {
                return Applied::OutOfOrder;
            }
            if last == observation {
                return Applied::Duplicate;
            }
        }
        let previous_observation_at = self.last_observation.map(|last| last.observed_at);
        self.last_observation = Some(observation);

        let mut changes = Vec::new();
        match observation.status {
            Status::Online { expires } => {
                self.last_seen_online = Some(t);
                self.online_between(t, expires.max(t), &mut changes);
            }
            Status::Offline { was_online } => {
                match was_online.map(|w| w.min(t)) {
                    Some(w) => {
                        self.cut_after(w, &mut changes);
                        // A visit between two looks that no poll saw.
                        let revealed = match self.open {
                            Some(open) => w > open.last_online_at,
                            None => previous_observation_at.is_some_and(|prev| w > prev),
                        };
                        if revealed {
                            self.online_between(w, w, &mut changes);
                        }
                    }
                    None => {
                        // Offline at `t` without a time: the last online moment we saw is the end.
                        if let Some(seen) = self.last_seen_online {
                            self.cut_after(seen, &mut changes);
                        }
                    }
                }
                self.close_if_gap_passed(t, &mut changes);
            }
            Status::Recently | Status::LastWeek | Status::LastMonth | Status::Unknown => {
                self.close_if_gap_passed(t, &mut changes);
            }
        }
        Applied::Changes(changes)
    }

    /// Evidence that the user was online from `from` to `until`.
    fn online_between(
        &mut self,
        from: DateTime<Utc>,
        until: DateTime<Utc>,
        changes: &mut Vec<SessionChange>,
    ) {
        match &mut self.open {
            Some(open) if from - open.last_online_at < self.gap => {
                if until > open.last_online_at {
                    open.last_online_at = until;
                    changes.push(SessionChange::Extended(*open));
                }
            }
            _ => {
                self.close_open(changes);
                let session = Session::starting(from, until);
                self.open = Some(session);
                changes.push(SessionChange::Opened(session));
            }
        }
    }

    /// Evidence that the user was not online after `last_online`.
    fn cut_after(&mut self, last_online: DateTime<Utc>, changes: &mut Vec<SessionChange>) {
        if let Some(open) = &mut self.open
            && open.last_online_at > last_online
        {
            open.last_online_at = last_online.max(open.started_at);
            changes.push(SessionChange::Extended(*open));
        }
    }

    fn close_if_gap_passed(&mut self, t: DateTime<Utc>, changes: &mut Vec<SessionChange>) {
        if self
            .open
            .is_some_and(|open| t - open.last_online_at >= self.gap)
        {
            self.close_open(changes);
        }
    }

    fn close_open(&mut self, changes: &mut Vec<SessionChange>) {
        if let Some(mut session) = self.open.take() {
            session.ended_at = Some(session.last_online_at);
            changes.push(SessionChange::Closed(session));
        }
    }
}

/// Folds a whole history (in any order, duplicates allowed) into sessions, oldest first, and
/// returns the folder positioned after the newest observation so the live fold can go on from it.
pub fn fold(mut observations: Vec<Observation>, gap: Duration) -> (Vec<Session>, SessionFolder) {
    observations.sort_by_key(|observation| observation.observed_at);
    let mut folder = SessionFolder::new(gap);
    let mut closed = Vec::new();
    for observation in observations {
        if let Applied::Changes(changes) = folder.apply(observation) {
            closed.extend(changes.into_iter().filter_map(|change| match change {
                SessionChange::Closed(session) => Some(session),
                _ => None,
            }));
        }
    }
    let sessions = closed.into_iter().chain(folder.open).collect();
    (sessions, folder)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const GAP: i64 = 180;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0)
            .single()
            .expect("valid timestamp")
    }

    fn online(t: i64, expires: i64) -> Observation {
        Observation {
            observed_at: at(t),
            status: Status::Online {
                expires: at(expires),
            },
        }
    }

    fn offline(t: i64, was_online: i64) -> Observation {
        Observation {
            observed_at: at(t),
            status: Status::Offline {
                was_online: Some(at(was_online)),
            },
        }
    }

    fn hidden(t: i64) -> Observation {
        Observation {
            observed_at: at(t),
            status: Status::Recently,
        }
    }

    fn closed(start: i64, end: i64) -> Session {
        Session {
            started_at: at(start),
            last_online_at: at(end),
            ended_at: Some(at(end)),
        }
    }

    fn open(start: i64, last_online: i64) -> Session {
        Session {
            started_at: at(start),
            last_online_at: at(last_online),
            ended_at: None,
        }
    }

    fn sessions_of(observations: Vec<Observation>) -> Vec<Session> {
        fold(observations, Duration::seconds(GAP)).0
    }

    #[test]
    fn session_ends_at_was_online_not_at_the_poll_that_noticed() {
        // Online at 0 (expires 300), seen offline at 100 having left at 40, then 400 s later
        // still offline: one session 0..40.
        let sessions = sessions_of(vec![online(0, 300), offline(100, 40), offline(400, 40)]);
        assert_eq!(sessions, vec![closed(0, 40)]);
    }

    #[test]
    fn offline_spell_shorter_than_gap_keeps_the_session() {
        // Left at 100, back at 279 (179 s later): same session, which ends at 600.
        let sessions = sessions_of(vec![
            online(0, 100),
            offline(150, 100),
            online(279, 600),
            offline(700, 600),
            offline(900, 600),
        ]);
        assert_eq!(sessions, vec![closed(0, 600)]);
    }

    #[test]
    fn offline_spell_of_exactly_the_gap_ends_the_session() {
        // Left at 100, back at 280 (180 s later, exactly the gap): two sessions.
        let sessions = sessions_of(vec![
            online(0, 100),
            offline(150, 100),
            online(280, 280),
            offline(300, 290),
            offline(600, 290),
        ]);
        assert_eq!(sessions, vec![closed(0, 100), closed(280, 290)]);
    }

    #[test]
    fn gap_closes_only_when_an_observation_is_a_full_gap_after_the_last_online_moment() {
        let mut folder = SessionFolder::new(Duration::seconds(GAP));
        folder.apply(online(0, 60));
        let still_open = folder.apply(offline(239, 60));
        assert_eq!(still_open, Applied::Changes(vec![]));
        assert_eq!(folder.open_session(), Some(&open(0, 60)));
        let closes = folder.apply(offline(240, 60));
        assert_eq!(
            closes,
            Applied::Changes(vec![SessionChange::Closed(closed(0, 60))])
        );
        assert_eq!(folder.open_session(), None);
    }

    #[test]
    fn hidden_statuses_are_neither_online_nor_offline() {
        // A hidden status does not start a session and does not cut one short...
        assert_eq!(
            sessions_of(vec![hidden(0), hidden(100), hidden(200)]),
            vec![]
        );
        let sessions = sessions_of(vec![online(0, 300), hidden(100)]);
        assert_eq!(sessions, vec![open(0, 300)]);
        // ...but time passing without online evidence still closes after the gap.
        let sessions = sessions_of(vec![online(0, 60), hidden(100), hidden(240)]);
        assert_eq!(sessions, vec![closed(0, 60)]);
    }

    #[test]
    fn a_visit_between_two_polls_is_revealed_by_was_online() {
        // Offline at 0 (left long ago), offline at 100 having been online at 50: a short session.
        let sessions = sessions_of(vec![offline(0, -5000), offline(100, 50), offline(400, 50)]);
        assert_eq!(sessions, vec![closed(50, 50)]);
    }

    #[test]
    fn first_observation_offline_does_not_invent_a_session_from_before_tracking() {
        assert_eq!(sessions_of(vec![offline(0, -30)]), vec![]);
    }

    #[test]
    fn offline_without_time_ends_at_the_last_online_sighting() {
        let observation = Observation {
            observed_at: at(120),
            status: Status::Offline { was_online: None },
        };
        let sessions = sessions_of(vec![online(0, 300), online(60, 360), observation]);
        assert_eq!(sessions, vec![open(0, 60)]);
    }

    #[test]
    fn duplicates_change_nothing() {
        let mut folder = SessionFolder::new(Duration::seconds(GAP));
        folder.apply(online(0, 300));
        assert_eq!(folder.apply(online(0, 300)), Applied::Duplicate);
        let once = sessions_of(vec![online(0, 300), offline(100, 50), offline(400, 50)]);
        let twice = sessions_of(vec![
            online(0, 300),
            online(0, 300),
            offline(100, 50),
            offline(100, 50),
            offline(400, 50),
            offline(400, 50),
        ]);
        assert_eq!(once, twice);
    }

    #[test]
    fn out_of_order_input_is_refused_live_and_folds_like_sorted_input() {
        let mut folder = SessionFolder::new(Duration::seconds(GAP));
        folder.apply(online(100, 200));
        assert_eq!(folder.apply(online(50, 60)), Applied::OutOfOrder);

        let sorted = vec![
            online(0, 100),
            offline(150, 100),
            online(500, 600),
            offline(650, 620),
            offline(900, 620),
        ];
        let mut shuffled = sorted.clone();
        shuffled.reverse();
        shuffled.swap(1, 3);
        assert_eq!(sessions_of(shuffled), sessions_of(sorted.clone()));
        assert_eq!(sessions_of(sorted), vec![closed(0, 100), closed(500, 620)]);
    }

    #[test]
    fn an_open_session_reports_its_duration_up_to_now_only() {
        let sessions = sessions_of(vec![online(0, 300)]);
        assert_eq!(sessions, vec![open(0, 300)]);
        assert_eq!(sessions[0].duration_at(at(120)), Duration::seconds(120));
        assert_eq!(sessions[0].duration_at(at(1000)), Duration::seconds(300));
    }

    #[test]
    fn live_fold_reports_each_change() {
        let mut folder = SessionFolder::new(Duration::seconds(GAP));
        assert_eq!(
            folder.apply(online(0, 300)),
            Applied::Changes(vec![SessionChange::Opened(open(0, 300))])
        );
        assert_eq!(
            folder.apply(offline(90, 70)),
            Applied::Changes(vec![SessionChange::Extended(open(0, 70))])
        );
        assert_eq!(
            folder.apply(online(500, 800)),
            Applied::Changes(vec![
                SessionChange::Closed(closed(0, 70)),
                SessionChange::Opened(open(500, 800)),
            ])
        );
    }
}
