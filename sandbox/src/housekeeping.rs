//! MTProto session housekeeping, as Telegram's servers do it: server salts, the checks on a
//! client's `msg_id`, and duplicate messages.
//!
//! * **Salts** belong to the auth key and change every [`SALT_PERIOD`] seconds; a message with a
//!   salt that is neither the current nor the previous one is answered with `bad_server_salt`
//!   (code 48) carrying the current salt, and not acted on: the client resends it. A client's
//!   first message has salt 0, so every connection meets this once. `get_future_salts` is
//!   answered with the salts of the coming periods.
//! * **msg_id**: a client's ids are `unix_time * 2^32` plus a counter and divisible by 4. One
//!   more than 300 s in the past is `bad_msg_notification` 16 ("too low"), more than 30 s in
//!   the future 17 ("too high"): a client with a skewed clock learns the server's time from the
//!   notification's own `msg_id` and resends. Wrong low bits are 18.
//! * **Sessions**: the first message of a session the server does not know gets
//!   `new_session_created` first (with the current salt): the client's cue that it may have
//!   missed updates. `destroy_session` forgets one.
//! * **Duplicates**: a message whose `msg_id` the session already saw (among its last
//!   [`SEEN_WINDOW`]) is ignored, as MTProto's security guidelines ask; the client's resend of an
//!   unanswered request must therefore use a new `msg_id`, as grammers and Telethon do.

use std::collections::{HashSet, VecDeque};

use sha2::{Digest, Sha256};

/// How long one server salt is valid, in seconds (Telegram's last about 30 minutes).
pub(crate) const SALT_PERIOD: i64 = 1800;
/// The most future salts one `get_future_salts` hands out, as on Telegram.
pub(crate) const MAX_FUTURE_SALTS: i32 = 64;
/// A client `msg_id` older than this many seconds is refused (16).
const MAX_PAST: i64 = 300;
/// A client `msg_id` further ahead than this many seconds is refused (17).
const MAX_FUTURE: i64 = 30;
/// How many recent `msg_id`s a session remembers to detect duplicates.
pub(crate) const SEEN_WINDOW: usize = 512;

/// The salt of `key` for the period that holds `unix_time`.
pub(crate) fn salt(key: [u8; 8], unix_time: i64) -> i64 {
    salt_of_period(key, unix_time.div_euclid(SALT_PERIOD))
}

fn salt_of_period(key: [u8; 8], period: i64) -> i64 {
    let digest = Sha256::new()
        .chain_update(key)
        .chain_update(period.to_le_bytes())
        .finalize();
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(bytes)
}

/// Whether a message may carry `salt`: the current period's, or the previous one's (a client
/// switching salts at the boundary).
pub(crate) fn salt_is_valid(key: [u8; 8], unix_time: i64, salt: i64) -> bool {
    let period = unix_time.div_euclid(SALT_PERIOD);
    salt == salt_of_period(key, period) || salt == salt_of_period(key, period - 1)
}

/// `(valid_since, valid_until, salt)` for `count` periods from the current one.
pub(crate) fn future_salts(key: [u8; 8], unix_time: i64, count: i32) -> Vec<(i32, i32, i64)> {
    let period = unix_time.div_euclid(SALT_PERIOD);
    (0..i64::from(count.clamp(1, MAX_FUTURE_SALTS)))
        .map(|n| {
            let since = (period + n) * SALT_PERIOD;
            (
                i32::try_from(since).unwrap_or(i32::MAX),
                i32::try_from(since + SALT_PERIOD).unwrap_or(i32::MAX),
                salt_of_period(key, period + n),
            )
        })
        .collect()
}

/// Why a client's `msg_id` is refused: the `bad_msg_notification` error code.
pub(crate) fn msg_id_error(msg_id: i64, unix_time: i64) -> Option<i32> {
    if msg_id.rem_euclid(4) != 0 {
        return Some(18);
    }
    let sent = msg_id >> 32;
    if sent < unix_time - MAX_PAST {
        Some(16)
    } else if sent > unix_time + MAX_FUTURE {
        Some(17)
    } else {
        None
    }
}

/// What the server remembers of one session of a connection.
pub(crate) struct SessionMemory {
    seen: HashSet<i64>,
    order: VecDeque<i64>,
}

impl SessionMemory {
    pub(crate) fn new() -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Records `msg_id`; false if the session already saw it.
    pub(crate) fn first_sight(&mut self, msg_id: i64) -> bool {
        if !self.seen.insert(msg_id) {
            return false;
        }
        self.order.push_back(msg_id);
        if self.order.len() > SEEN_WINDOW
            && let Some(oldest) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const KEY: [u8; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

    fn msg_id_at(unix_time: i64) -> i64 {
        unix_time << 32
    }

    #[test]
    fn msg_ids_outside_the_window_or_with_wrong_low_bits_are_refused() {
        assert_eq!(msg_id_error(msg_id_at(NOW), NOW), None);
        assert_eq!(msg_id_error(msg_id_at(NOW - 299), NOW), None);
        assert_eq!(msg_id_error(msg_id_at(NOW - 301), NOW), Some(16));
        assert_eq!(msg_id_error(msg_id_at(NOW + 3600), NOW), Some(17));
        assert_eq!(msg_id_error(msg_id_at(NOW) + 1, NOW), Some(18));
    }

    #[test]
    fn the_current_and_previous_salts_are_valid_and_zero_is_not() {
        let current = salt(KEY, NOW);
        assert!(salt_is_valid(KEY, NOW, current));
        assert!(salt_is_valid(KEY, NOW + SALT_PERIOD, current));
        assert!(!salt_is_valid(KEY, NOW + 2 * SALT_PERIOD, current));
        assert!(!salt_is_valid(KEY, NOW, 0));
        assert_ne!(salt([9; 8], NOW), current);
    }

    #[test]
    fn future_salts_start_with_the_current_one_and_follow_each_other() {
        let salts = future_salts(KEY, NOW, 3);
        assert_eq!(salts.len(), 3);
        assert_eq!(salts[0].2, salt(KEY, NOW));
        assert_eq!(salts[0].1, salts[1].0);
        assert_eq!(salts[1].2, salt(KEY, i64::from(salts[1].0)));
        assert_eq!(future_salts(KEY, NOW, 1000).len(), 64);
    }

    #[test]
    fn a_repeated_msg_id_is_seen_once_within_the_window() {
        let mut memory = SessionMemory::new();
        assert!(memory.first_sight(4));
        assert!(!memory.first_sight(4));
        for id in 1..=SEEN_WINDOW as i64 {
            memory.first_sight(id * 8);
        }
        // Out of the window now.
        assert!(memory.first_sight(4));
    }
}
