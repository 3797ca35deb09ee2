//! Single-use tickets for `/ws`: the dashboard opens the live WebSocket with `?ticket=` instead
//! of the admin token, so the token never travels in a URL (where every reverse proxy's access
//! log keeps it). A ticket is worth one connection, within [`TICKET_LIFETIME`] of its issue.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use rand::RngCore;

pub const TICKET_LIFETIME: Duration = Duration::from_secs(30);

/// Tickets issued and not yet used, with when each expires.
#[derive(Debug, Default)]
pub struct Tickets {
    open: HashMap<String, Instant>,
}

impl Tickets {
    /// A new ticket, valid until the returned instant. Expired ones are forgotten meanwhile, so
    /// the book holds at most what was issued in the last [`TICKET_LIFETIME`].
    pub fn issue(&mut self, now: Instant) -> (String, Instant) {
        self.open.retain(|_, expires| *expires > now);
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let ticket: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        let expires = now + TICKET_LIFETIME;
        self.open.insert(ticket.clone(), expires);
        (ticket, expires)
    }

    /// Uses up `ticket`: true once, if it was issued and has not expired.
    pub fn redeem(&mut self, ticket: &str, now: Instant) -> bool {
        self.open
            .remove(ticket)
            .is_some_and(|expires| expires > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_one_connection() {
        let mut tickets = Tickets::default();
        let now = Instant::now();
        let (ticket, expires) = tickets.issue(now);
        assert_eq!(expires, now + TICKET_LIFETIME);
        assert_eq!(ticket.len(), 64);
        assert!(tickets.redeem(&ticket, now + Duration::from_secs(1)));
        assert!(!tickets.redeem(&ticket, now + Duration::from_secs(2)));
    }

    #[test]
    fn an_expired_or_unknown_ticket_opens_nothing() {
        let mut tickets = Tickets::default();
        let now = Instant::now();
        let (ticket, _) = tickets.issue(now);
        assert!(!tickets.redeem(&ticket, now + TICKET_LIFETIME));
        assert!(!tickets.redeem("not-a-ticket", now));
    }

    #[test]
    fn tickets_are_different_and_expired_ones_are_forgotten() {
        let mut tickets = Tickets::default();
        let now = Instant::now();
        let (first, _) = tickets.issue(now);
        let (second, _) = tickets.issue(now);
        assert_ne!(first, second);
        tickets.issue(now + TICKET_LIFETIME + Duration::from_secs(1));
        assert_eq!(tickets.open.len(), 1);
    }
}
