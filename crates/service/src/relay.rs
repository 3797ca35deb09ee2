//! The live feed across instances on one PostgreSQL database: every instance's WebSocket shows
//! what any instance observed.
//!
//! After each commit, the instance that committed announces the new events' ids with
//! `NOTIFY tgwatch_events` ([`Relay::announce`]); every other instance `LISTEN`s, reads those
//! events from the outbox (the source of truth: a payload is only ids) and hands them to its own
//! live feed ([`Relay::spawn_listener`]). Like the feed itself this is best effort: what is
//! committed while a listener reconnects reaches webhooks and the bot (which read the outbox)
//! but not the WebSockets. On SQLite, one instance, there is nothing to relay.

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, Statement, sqlx::postgres::PgListener,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::feed::Feed;
use tgwatch_core::events::{Event, EventType};
use tgwatch_store as storage;

/// The channel instances notify and listen on.
const CHANNEL: &str = "tgwatch_events";
/// Ids per notification: well under PostgreSQL's 8000-byte payload limit.
const IDS_PER_NOTIFICATION: usize = 100;

/// One notification: who committed, and what.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Announcement {
    from: Uuid,
    ids: Vec<String>,
}

#[derive(Clone)]
pub struct Relay {
    db: DatabaseConnection,
    url: String,
    instance_id: Uuid,
    feed: Feed,
}

impl Relay {
    /// The relay of this instance, on PostgreSQL; None on SQLite.
    pub fn new(db: DatabaseConnection, url: &str, instance_id: Uuid, feed: Feed) -> Option<Relay> {
        (db.get_database_backend() == DbBackend::Postgres).then(|| Relay {
            db,
            url: url.to_owned(),
            instance_id,
            feed,
        })
    }

    /// Tells the other instances of events this one just committed.
    pub fn announce(&self, events: &[Event]) {
        let payloads = announcements(self.instance_id, events);
        if payloads.is_empty() {
            return;
        }
        let db = self.db.clone();
        tokio::spawn(async move {
            if let Err(error) = db.execute_raw(notify_all(payloads)).await {
                tracing::warn!(%error, "cannot announce events to the other instances");
            }
        });
    }

    /// Listens for the other instances' announcements and feeds their events to this
    /// instance's live feed; runs until aborted (the live worker's restart starts it again).
    pub fn spawn_listener(&self) -> tokio::task::JoinHandle<()> {
        let relay = self.clone();
        tokio::spawn(async move {
            let mut listener = match PgListener::connect(&relay.url).await {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for the other instances' events");
                    return;
                }
            };
            if let Err(error) = listener.listen(CHANNEL).await {
                tracing::error!(%error, "cannot listen for the other instances' events");
                return;
            }
            loop {
                // A lost connection is re-established by the next `recv`.
                match listener.recv().await {
                    Ok(notification) => relay.relay(notification.payload()).await,
                    Err(error) => {
                        tracing::warn!(%error, "listening for the other instances' events failed");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            }
        })
    }

    async fn relay(&self, payload: &str) {
        let announcement: Announcement = match serde_json::from_str(payload) {
            Ok(announcement) => announcement,
            Err(error) => {
                tracing::warn!(%error, "an announcement that is not ours");
                return;
            }
        };
        if announcement.from == self.instance_id {
            return;
        }
        match storage::cluster::events_by_ids(&self.db, &announcement.ids).await {
            Ok(rows) => {
                for row in rows {
                    let Some(event_type) = EventType::parse(&row.event_type) else {
                        continue;
                    };
                    self.feed.publish(&Event {
                        id: row.id,
                        event_type,
                        timestamp: row.created_at,
                        body: row.body,
                        tracked_user_id: row.tracked_user_id,
                        channel_id: row.channel_id,
                    });
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the events another instance announced")
            }
        }
    }
}

/// One statement that sends every payload: each statement outside a transaction is a commit of
/// its own, and a batch of 5,000 channel posts made 50 of them.
fn notify_all(payloads: Vec<String>) -> Statement {
    let mut sql = String::from("SELECT pg_notify($1, payload) FROM (VALUES ");
    for index in 0..payloads.len() {
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${})", index + 2));
    }
    sql.push_str(") AS announced(payload)");
    let values = std::iter::once(CHANNEL.into()).chain(payloads.into_iter().map(Into::into));
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// The notification payloads announcing `events`, a bounded number of ids each.
fn announcements(from: Uuid, events: &[Event]) -> Vec<String> {
    events
        .chunks(IDS_PER_NOTIFICATION)
        .filter_map(|chunk| {
            serde_json::to_string(&Announcement {
                from,
                ids: chunk.iter().map(|event| event.id.clone()).collect(),
            })
            .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_carry_ids_in_bounded_payloads() {
        let from = Uuid::from_u128(1);
        let events: Vec<Event> = (0..250)
            .map(|_| {
                Event::new(
                    EventType::UserOnline,
                    chrono::Utc::now(),
                    serde_json::json!({}),
                )
            })
            .collect();
        let payloads = announcements(from, &events);
        assert_eq!(payloads.len(), 3);
        let mut ids = Vec::new();
        for payload in &payloads {
            assert!(payload.len() < 8000, "{} bytes", payload.len());
            let announcement: Announcement = serde_json::from_str(payload).unwrap();
            assert_eq!(announcement.from, from);
            ids.extend(announcement.ids);
        }
        let sent: Vec<String> = events.into_iter().map(|event| event.id).collect();
        assert_eq!(ids, sent);
        assert!(announcements(from, &[]).is_empty());
    }
}
