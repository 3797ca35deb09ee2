//! After a commit: the events just written to the outbox go to the consumers' actors (the
//! webhook dispatcher's, the bot's and the live feed's workers), as a [`Committed`] message.
//!
//! Only committed events are published, so nothing is delivered that was not committed; a
//! consumer that restarts loses nothing either, since its mailbox survives a restart in place
//! and the webhook dispatcher and the bot read their work from the outbox anyway (the message
//! only tells them to look now rather than at their next poll).

use std::sync::{Arc, PoisonError, RwLock};

use actix::prelude::*;

use tgwatch_core::events::Event;

/// Events committed together, in the order they were written.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Committed(pub Arc<[Event]>);

/// Where the writers of the outbox (storage, channels, the alerts of the fleet's failover)
/// publish what they committed. Subscribers join once, at start.
#[derive(Clone, Default)]
pub struct Publisher {
    subscribers: Arc<RwLock<Vec<Recipient<Committed>>>>,
}

impl Publisher {
    pub fn subscribe(&self, subscriber: Recipient<Committed>) {
        self.subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(subscriber);
    }

    /// Sends `events` (already committed) to every subscriber; nothing to send is nothing.
    pub fn publish(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let committed = Committed(events.into());
        for subscriber in self
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            subscriber.do_send(committed.clone());
        }
    }
}
