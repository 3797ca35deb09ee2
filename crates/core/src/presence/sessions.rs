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
//! exactly what the live fold gave. The live fold must see observations in their order (by time;
//! at the same instant in the fixed order of [`Observation`]'s `Ord`); [`SessionFolder::apply`]
//! says [`Applied::OutOfOrder`] otherwise, and the caller folds again from a restart point.
//!
//! Restarting a fold. Call the first observation at or after a session's `started_at` its
//! opener. The opener opens that session whatever the state before it: it either finds no open
//! session or closes the one before (which is final from then on), and no earlier observation
//! lies at or after `started_at`. So a fold can restart at any session's start from
//! [`SessionFolder::restart`] (no open session, the newest observation and the newest online
//! sighting before `started_at`) and gives, from there on, exactly the sessions of a fold of the
//! whole history, as long as the opener is unchanged: a late observation must come after the
//! opener of the session the fold restarts at. Before the first opener there is no session and
//! no online sighting, so a late observation that precedes every opener restarts at its own time
//! from the newest observation before it.

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

    /// The state at a restart point (see the module's documentation): no session open,
    /// `before` the newest observation and `seen_online` the newest online sighting before it.
    pub fn restart(
        gap: Duration,
        before: Option<Observation>,
        seen_online: Option<DateTime<Utc>>,
    ) -> SessionFolder {
        SessionFolder::resume(gap, None, before, seen_online)
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
            if observation < last {
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
pub fn fold(observations: Vec<Observation>, gap: Duration) -> (Vec<Session>, SessionFolder) {
    fold_from(SessionFolder::new(gap), observations)
}

/// Folds `observations` (in any order, duplicates allowed, none before the folder's last one) on
/// from `folder`: the sessions closed on the way and the one left open, oldest first, and the
/// folder after them.
pub fn fold_from(
    mut folder: SessionFolder,
    mut observations: Vec<Observation>,
) -> (Vec<Session>, SessionFolder) {
    observations.sort();
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

    #[test]
    fn statuses_of_the_same_instant_are_read_offline_last_whatever_their_arrival() {
        // Online and offline seen at the same instant: she was online then and left (at 95).
        let online_at_100 = online(100, 400);
        let offline_at_100 = offline(100, 95);
        assert!(online_at_100 < offline_at_100);
        let expected = vec![closed(0, 95)];
        for arrival in [
            vec![online(0, 60), online_at_100, offline_at_100, hidden(400)],
            vec![online(0, 60), offline_at_100, online_at_100, hidden(400)],
        ] {
            assert_eq!(sessions_of(arrival.clone()), expected);
            assert_eq!(live(&arrival), expected, "{arrival:?}");
        }
        // Live, the online status arriving second is late: the fold must restart.
        let mut folder = SessionFolder::new(Duration::seconds(GAP));
        folder.apply(online(0, 60));
        folder.apply(offline_at_100);
        assert_eq!(folder.apply(online_at_100), Applied::OutOfOrder);
        // The same status twice at one instant is a duplicate; two online statuses of one
        // instant are read by expiry, and a hidden status after either.
        assert_eq!(folder.apply(offline_at_100), Applied::Duplicate);
        assert!(online(100, 200) < online(100, 300));
        assert!(offline(100, 99) < hidden(100));
    }

    /// The live path: observations applied as they arrive, the sessions kept by start as the
    /// storage keeps them, and on an out-of-order observation everything folded again.
    fn live(arrivals: &[Observation]) -> Vec<Session> {
        let gap = Duration::seconds(GAP);
        let mut folder = SessionFolder::new(gap);
        let mut stored: std::collections::BTreeMap<DateTime<Utc>, Session> = Default::default();
        let mut seen = Vec::new();
        for observation in arrivals {
            seen.push(*observation);
            match folder.apply(*observation) {
                Applied::Changes(changes) => {
                    for change in changes {
                        let session = *change.session();
                        stored.insert(session.started_at, session);
                    }
                }
                Applied::Duplicate => {}
                Applied::OutOfOrder => {
                    let (sessions, refolded) = fold(seen.clone(), gap);
                    folder = refolded;
                    stored = sessions.into_iter().map(|s| (s.started_at, s)).collect();
                }
            }
        }
        stored.into_values().collect()
    }

    /// A random history in time order: steps of 0 to 150 s (0: statuses of one instant), every
    /// kind of status, expiries and `was_online` around the observation, some exact repeats.
    fn random_history(rng: &mut impl rand::Rng, length: usize) -> Vec<Observation> {
        let mut t = 0;
        let mut history: Vec<Observation> = Vec::with_capacity(length);
        while history.len() < length {
            if let Some(last) = history.last()
                && rng.random_bool(0.05)
            {
                history.push(*last);
                continue;
            }
            t += [0, 0, 1, 30, 60, 90, 120, 150, 200, 400][rng.random_range(0..10)];
            history.push(random_observation(rng, t));
        }
        history
    }

    fn random_observation(rng: &mut impl rand::Rng, t: i64) -> Observation {
        let status = match rng.random_range(0..10) {
            0..=3 => Status::Online {
                expires: at(t + rng.random_range(0..300)),
            },
            4..=6 => Status::Offline {
                was_online: Some(at(t - rng.random_range(0..400))),
            },
            7 => Status::Offline { was_online: None },
            8 => Status::Recently,
            _ => Status::Unknown,
        };
        Observation {
            observed_at: at(t),
            status,
        }
    }

    #[test]
    fn the_live_fold_equals_a_full_fold_of_the_same_history_in_any_arrival_order() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(20_261_205);
        for case in 0..3000 {
            let length = rng.random_range(1..60);
            let history = random_history(&mut rng, length);
            let expected = sessions_of(history.clone());
            // Mostly in order, with late arrivals: each observation moved back a few places
            // now and then, and statuses of one instant in either order.
            let mut arrivals = history.clone();
            for _ in 0..rng.random_range(0..6) {
                let from = rng.random_range(0..arrivals.len());
                let to = from.saturating_sub(rng.random_range(0..8));
                let moved = arrivals.remove(from);
                arrivals.insert(to, moved);
            }
            assert_eq!(
                live(&arrivals),
                expected,
                "case {case}: history {history:?}, arrivals {arrivals:?}"
            );
        }
    }

    /// What the storage does for a late observation, on a history in memory: restart at the
    /// newest session whose opener comes before it (or at the late observation itself), keep
    /// the sessions before that point and fold the rest again.
    fn refold_after(history: &[Observation], late: Observation) -> Vec<Session> {
        let gap = Duration::seconds(GAP);
        let old_sessions = sessions_of(history.to_vec());
        let restart_at = old_sessions
            .iter()
            .rev()
            .filter(|session| session.started_at < late.observed_at)
            .map(|session| session.started_at)
            .find(|&started_at| {
                history
                    .iter()
                    .filter(|o| o.observed_at >= started_at)
                    .min()
                    .is_some_and(|opener| *opener < late)
            });
        let from = restart_at.unwrap_or(late.observed_at);
        let all: Vec<Observation> = history.iter().copied().chain([late]).collect();
        let before = all.iter().filter(|o| o.observed_at < from).max().copied();
        let seen_online = all
            .iter()
            .filter(|o| o.observed_at < from && matches!(o.status, Status::Online { .. }))
            .map(|o| o.observed_at)
            .max();
        let suffix = all
            .iter()
            .filter(|o| o.observed_at >= from)
            .copied()
            .collect();
        let (refolded, _) = fold_from(SessionFolder::restart(gap, before, seen_online), suffix);
        old_sessions
            .into_iter()
            .filter(|session| restart_at.is_some_and(|restart| session.started_at < restart))
            .chain(refolded)
            .collect()
    }

    #[test]
    fn folding_again_from_the_session_a_late_observation_falls_into_equals_a_full_fold() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(7_000_007);
        for case in 0..5000 {
            let length = rng.random_range(0..60);
            let history = random_history(&mut rng, length);
            let end = history
                .last()
                .map_or(0, |o| (o.observed_at - at(0)).num_seconds());
            // Anywhere in the history, often at an instant already observed, sometimes a repeat.
            let late = match (rng.random_range(0..4), history.is_empty()) {
                (0, false) => history[rng.random_range(0..history.len())],
                (1, false) => {
                    let t = history[rng.random_range(0..history.len())].observed_at;
                    random_observation(&mut rng, (t - at(0)).num_seconds())
                }
                _ => {
                    let t = rng.random_range(-100..end + 100);
                    random_observation(&mut rng, t)
                }
            };
            let mut with_late = history.clone();
            with_late.push(late);
            assert_eq!(
                refold_after(&history, late),
                sessions_of(with_late),
                "case {case}: history {history:?}, late {late:?}"
            );
        }
    }
}
