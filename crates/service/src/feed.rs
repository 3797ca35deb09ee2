//! The live feed: every event as soon as it is stored, for the consumers that want it now (the
//! WebSocket of the dashboard and Mini App). Webhooks read the outbox instead, which survives
//! restarts; the feed is best effort: a consumer that falls behind misses events and is told.

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
