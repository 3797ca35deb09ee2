//! The write throughput of channel messages ([`write_batch`]), for the ignored
//! `measure_write_throughput` test: run it in release mode.

use std::time::Instant;

use chrono::{SubsecRound, Utc};
use sea_orm::{ActiveValue::Set, DatabaseConnection, EntityTrait};
use uuid::Uuid;

use tgwatch_core::{events::MessageEvent, telegram::ChannelMessage};
use tgwatch_store::{
    Doing, StorageError,
    entities::channels,
    messages::{ChannelChange, write_batch},
};

/// The result of [`measure`].
#[derive(Debug)]
pub struct Measurement {
    pub messages: usize,
    pub events: usize,
    pub seconds: f64,
    pub events_per_second: f64,
}

/// Measures [`write_batch`] on `db` (migrated, ideally empty): creates `channels` channels and
/// writes `messages` new messages spread over them round-robin, `batch_size` per batch, each
/// with a 60-character text. Only the `write_batch` calls are timed.
pub async fn measure(
    db: &DatabaseConnection,
    channels: usize,
    messages: usize,
    batch_size: usize,
) -> Result<Measurement, StorageError> {
    let now = Utc::now().trunc_subsecs(6);
    let channel_ids: Vec<Uuid> = (0..channels.max(1)).map(|_| Uuid::now_v7()).collect();
    let rows = channel_ids
        .iter()
        .enumerate()
        .map(|(index, id)| channels::ActiveModel {
            id: Set(*id),
            telegram_channel_id: Set(Some(1_000_000 + index as i64)),
            access_hash: Set(Some(42)),
            username: Set(Some(format!("bench_channel_{index}"))),
            invite_hash: Set(None),
            title: Set(Some(format!("Bench channel {index}"))),
            about: Set(None),
            member_count: Set(None),
            tags: Set("[]".to_owned()),
            is_active: Set(true),
            status: Set(tgwatch_store::channels::ChannelStatus::Active),
            status_reason: Set(None),
            account_id: Set(None),
            date_joined: Set(None),
            last_message_id: Set(0),
            last_event_at: Set(None),
            source: Set(tgwatch_core::config::Origin::Api),
            created_at: Set(now),
            updated_at: Set(now),
        });
    let rows: Vec<channels::ActiveModel> = rows.collect();
    for chunk in rows.chunks(1000) {
        channels::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await
            .doing("creating benchmark channels")?;
    }
    let all: Vec<ChannelChange> = (0..messages)
        .map(|n| {
            let channel = n % channel_ids.len();
            let id = i32::try_from(n / channel_ids.len() + 1).unwrap_or(i32::MAX);
            ChannelChange {
                channel_id: channel_ids[channel],
                channel_username: Some(format!("bench_channel_{channel}")),
                change: MessageEvent::New(ChannelMessage {
                    channel_id: 1_000_000 + channel as i64,
                    id,
                    date: now,
                    text: format!("message {n:>10} of the benchmark, some words to store"),
                    media: None,
                    edit_date: None,
                    sender_id: None,
                    sender_name: None,
                }),
            }
        })
        .collect();
    let started = Instant::now();
    let mut events = 0;
    for batch in all.chunks(batch_size.max(1)) {
        events += write_batch(db, batch, Utc::now()).await?.events.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Measurement {
        messages,
        events,
        seconds,
        events_per_second: events as f64 / seconds.max(f64::EPSILON),
    })
}
