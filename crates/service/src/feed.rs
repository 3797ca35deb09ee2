//! The live hub's feed: the committed events its worker receives (`crate::publish`), for the
//! WebSocket of the dashboard and Mini App. Webhooks and the bot read the outbox instead; the
//! feed is best effort: a WebSocket that falls behind misses events and is told.

use std::sync::Arc;

use tokio::sync::broadcast;

use tgwatch_core::events::Event;

/// How many events a slow consumer may fall behind before it starts missing some.
const CAPACITY: usize = 4096;

#[derive(Clone)]
pub struct Feed {
    sender: broadcast::Sender<Arc<Event>>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Feed {
    /// Sends to every current subscriber; nobody listening is fine.
    pub fn publish(&self, event: &Event) {
        let _ = self.sender.send(Arc::new(event.clone()));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}
