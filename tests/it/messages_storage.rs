//! Channel messages against a real database (SQLite, or PostgreSQL with
//! TGWATCH_TEST_DATABASE_URL): `storage::messages::write_batch` with its outbox events, the
//! listing, and the two HTTP endpoints that read them.

use crate::common;

use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::Value;
use tgwatch_core::events::{EventType, MessageEvent};
use tgwatch_store::{
    self as storage,
    entities::{channels, events, messages},
    messages::{BatchOutcome, ChannelChange, MessageFilter},
    page::Order,
};
use tgwatch_telegram::{ChannelMessage, Media, MediaKind};
use uuid::Uuid;

const TELEGRAM_CHANNEL_ID: i64 = 1_234_567;

/// A monitored channel row, as the channels feature would have made it.
async fn add_channel(db: &DatabaseConnection, telegram_id: i64, username: &str) -> Uuid {
    let now = Utc::now().trunc_subsecs(6);
    let id = Uuid::now_v7();
    channels::Entity::insert(channels::ActiveModel {
        id: Set(id),
        telegram_channel_id: Set(Some(telegram_id)),
        access_hash: Set(Some(99)),
        username: Set(Some(username.to_owned())),
        invite_hash: Set(None),
        title: Set(Some(format!("Channel {username}"))),
        about: Set(None),
        member_count: Set(Some(10)),
        tags: Set("[]".to_owned()),
        is_active: Set(true),
        status: Set(storage::channels::ChannelStatus::Active),
        status_reason: Set(None),
        account_id: Set(None),
        date_joined: Set(None),
        last_message_id: Set(0),
        last_event_at: Set(None),
        source: Set(tgwatch_core::config::Origin::Api),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await
    .expect("insert channel");
    id
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_780_000_000 + seconds, 0)
        .single()
        .expect("time")
}

fn message(id: i32, text: &str) -> ChannelMessage {
    ChannelMessage {
        channel_id: TELEGRAM_CHANNEL_ID,
        id,
        date: at(i64::from(id) * 60),
        text: text.to_owned(),
        media: None,
        edit_date: None,
        sender_id: Some(777),
        sender_name: None,
    }
}

fn edited(id: i32, text: &str, edit_second: i64) -> ChannelMessage {
    ChannelMessage {
        edit_date: Some(at(edit_second)),
        ..message(id, text)
    }
}

fn change(channel_id: Uuid, change: MessageEvent) -> ChannelChange {
    ChannelChange {
        channel_id,
        channel_username: Some("news_channel".to_owned()),
        change,
    }
}

fn new(channel_id: Uuid, message: ChannelMessage) -> ChannelChange {
    change(channel_id, MessageEvent::New(message))
}

fn edit(channel_id: Uuid, message: ChannelMessage) -> ChannelChange {
    change(channel_id, MessageEvent::Edited(message))
}

fn delete(channel_id: Uuid, ids: &[i32]) -> ChannelChange {
    change(channel_id, MessageEvent::Deleted { ids: ids.to_vec() })
}

/// Microseconds, as the service's clock gives them.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

async fn write(db: &DatabaseConnection, batch: &[ChannelChange]) -> BatchOutcome {
    storage::messages::write_batch(db, batch, now())
        .await
        .expect("write batch")
}

/// (inserted, edited, deleted, ignored)
fn counts(outcome: &BatchOutcome) -> (usize, usize, usize, usize) {
    (
        outcome.inserted,
        outcome.edited,
        outcome.deleted,
        outcome.ignored,
    )
}

async fn stored(db: &DatabaseConnection, channel_id: Uuid, id: i32) -> messages::Model {
    storage::messages::get(db, channel_id, id)
        .await
        .expect("get")
        .unwrap_or_else(|| panic!("message {id} is not stored"))
}

async fn outbox(db: &DatabaseConnection) -> Vec<(String, Value)> {
    events::Entity::find()
        .order_by_asc(events::Column::Id)
        .all(db)
        .await
        .expect("events")
        .into_iter()
        .map(|row| {
            let body: Value = serde_json::from_str(&row.body).expect("json body");
            assert_eq!(body["type"], row.event_type.as_str());
            (row.event_type, body["data"].clone())
        })
        .collect()
}

async fn channel(db: &DatabaseConnection, id: Uuid) -> channels::Model {
    channels::Entity::find_by_id(id)
        .one(db)
        .await
        .expect("channel")
        .expect("channel exists")
}

#[tokio::test]
async fn new_messages_are_stored_once_even_when_sent_twice() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;

    let first = write(
        &db,
        &[
            new(channel_id, message(1, "hello")),
            new(channel_id, message(2, "world")),
            new(channel_id, message(1, "hello")),
        ],
    )
    .await;
    assert_eq!(counts(&first), (2, 0, 0, 1));
    assert_eq!(first.events.len(), 2);

    // The second account pushes the same messages after a reassignment.
    let again = write(
        &db,
        &[
            new(channel_id, message(2, "world")),
            new(channel_id, message(1, "hello")),
        ],
    )
    .await;
    assert_eq!(counts(&again), (0, 0, 0, 2));
    assert!(again.events.is_empty());

    let rows = messages::Entity::find()
        .filter(messages::Column::ChannelId.eq(channel_id))
        .all(&db)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2);
    let one = stored(&db, channel_id, 1).await;
    assert_eq!(one.text, "hello");
    assert_eq!(one.date, at(60));
    assert_eq!(one.sender_id, Some(777));
    assert_eq!(one.version, 1);
    assert!(!one.is_deleted);
    assert_eq!(outbox(&db).await.len(), 2);
}

#[tokio::test]
async fn an_edit_keeps_the_earlier_version_and_a_repeat_changes_nothing() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    write(&db, &[new(channel_id, message(7, "first draft"))]).await;

    let first_edit = write(&db, &[edit(channel_id, edited(7, "second draft", 1000))]).await;
    assert_eq!(counts(&first_edit), (0, 1, 0, 0));
    // The same edit from the other account, then again in one batch with a newer one.
    let repeat = write(&db, &[edit(channel_id, edited(7, "second draft", 1000))]).await;
    assert_eq!(counts(&repeat), (0, 0, 0, 1));
    let second = write(
        &db,
        &[
            edit(channel_id, edited(7, "second draft", 1000)),
            edit(channel_id, edited(7, "final", 2000)),
        ],
    )
    .await;
    assert_eq!(counts(&second), (0, 1, 0, 1));
    // An earlier edit arriving late does not overwrite the newer contents.
    let stale = write(&db, &[edit(channel_id, edited(7, "second draft", 1000))]).await;
    assert_eq!(counts(&stale), (0, 0, 0, 1));

    let row = stored(&db, channel_id, 7).await;
    assert_eq!(row.text, "final");
    assert_eq!(row.version, 3);
    assert_eq!(row.edit_date, Some(at(2000)));
    let versions = storage::messages::versions(&db, row.id)
        .await
        .expect("versions");
    let texts: Vec<(i32, &str, Option<DateTime<Utc>>)> = versions
        .iter()
        .map(|v| (v.version, v.text.as_str(), v.edit_date))
        .collect();
    assert_eq!(
        texts,
        vec![
            (1, "first draft", None),
            (2, "second draft", Some(at(1000)))
        ]
    );

    let events = outbox(&db).await;
    let edits: Vec<&Value> = events
        .iter()
        .filter(|(kind, _)| kind == "edited_message")
        .map(|(_, data)| data)
        .collect();
    assert_eq!(edits.len(), 2);
    assert_eq!(edits[0]["previous_text"], "first draft");
    assert_eq!(edits[0]["text"], "second draft");
    assert_eq!(edits[0]["version"], 2);
    assert_eq!(edits[1]["previous_text"], "second draft");
    assert_eq!(edits[1]["version"], 3);
}

#[tokio::test]
async fn a_new_message_with_other_contents_is_an_edit() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    write(
        &db,
        &[
            new(channel_id, message(1, "before")),
            new(channel_id, message(2, "caption")),
        ],
    )
    .await;

    // A catch-up from history sees current contents only: new text with an edit date, and the
    // same caption with a photo added.
    let photo = Media {
        kind: MediaKind::Photo,
        reference: "photo:1:2".to_owned(),
    };
    let catch_up = write(
        &db,
        &[
            new(channel_id, edited(1, "after", 500)),
            new(
                channel_id,
                ChannelMessage {
                    media: Some(photo),
                    ..message(2, "caption")
                },
            ),
        ],
    )
    .await;
    assert_eq!(counts(&catch_up), (0, 2, 0, 0));
    let one = stored(&db, channel_id, 1).await;
    assert_eq!((one.text.as_str(), one.version), ("after", 2));
    let two = stored(&db, channel_id, 2).await;
    assert_eq!(two.media_type.as_deref(), Some("photo"));
    assert_eq!(two.media_ref.as_deref(), Some("photo:1:2"));
    assert_eq!(two.version, 2);

    // The unedited original pushed late by the other account is stale, not an edit back.
    let late = write(&db, &[new(channel_id, message(1, "before"))]).await;
    assert_eq!(counts(&late), (0, 0, 0, 1));
    assert_eq!(stored(&db, channel_id, 1).await.text, "after");
}

#[tokio::test]
async fn an_edit_of_a_message_never_seen_stores_it_as_version_one() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    let outcome = write(&db, &[edit(channel_id, edited(40, "edited long ago", 300))]).await;
    assert_eq!(counts(&outcome), (0, 1, 0, 0));
    let row = stored(&db, channel_id, 40).await;
    assert_eq!(row.version, 1);
    assert_eq!(row.edit_date, Some(at(300)));
    assert_eq!(row.text, "edited long ago");
    assert!(
        storage::messages::versions(&db, row.id)
            .await
            .expect("versions")
            .is_empty()
    );
    let events = outbox(&db).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].0, "edited_message");
    assert_eq!(events[0].1["previous_text"], Value::Null);
    // Edits of old messages do not move where a catch-up from history starts.
    assert_eq!(channel(&db, channel_id).await.last_message_id, 0);
}

#[tokio::test]
async fn deletions_mark_stored_messages_and_record_unseen_ones() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    write(&db, &[new(channel_id, message(3, "soon gone"))]).await;

    let deleted_at = now();
    let outcome = storage::messages::write_batch(&db, &[delete(channel_id, &[3, 99])], deleted_at)
        .await
        .expect("write");
    assert_eq!(counts(&outcome), (0, 0, 2, 0));

    let known = stored(&db, channel_id, 3).await;
    assert!(known.is_deleted);
    assert_eq!(known.deleted_at, Some(deleted_at));
    assert_eq!(
        known.text, "soon gone",
        "a deleted message keeps its contents"
    );
    let unseen = stored(&db, channel_id, 99).await;
    assert!(unseen.is_deleted);
    assert_eq!(unseen.text, "");
    assert_eq!(unseen.date, deleted_at);
    assert_eq!(unseen.deleted_at, Some(deleted_at));

    // Seen again, or edited after deletion: nothing changes.
    let again = write(
        &db,
        &[
            delete(channel_id, &[3, 99]),
            edit(channel_id, edited(3, "too late", 9000)),
        ],
    )
    .await;
    assert_eq!(counts(&again), (0, 0, 0, 3));
    assert_eq!(stored(&db, channel_id, 3).await.text, "soon gone");

    let deletions: Vec<Value> = outbox(&db)
        .await
        .into_iter()
        .filter(|(kind, _)| kind == "deleted_message")
        .map(|(_, data)| data)
        .collect();
    assert_eq!(deletions.len(), 2);
    assert_eq!(deletions[0]["message_id"], 3);
    assert_eq!(deletions[0]["text"], "soon gone");
    assert_eq!(deletions[1]["message_id"], 99);
    assert_eq!(
        common::timestamp(&deletions[1]["deleted_at"]),
        deleted_at,
        "deleted_at round-trips to the microsecond"
    );
}

#[tokio::test]
async fn one_batch_applies_changes_of_a_message_in_order() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    let outcome = write(
        &db,
        &[
            new(channel_id, message(1, "v1")),
            edit(channel_id, edited(1, "v2", 100)),
            new(channel_id, message(2, "other")),
            delete(channel_id, &[1]),
        ],
    )
    .await;
    assert_eq!(counts(&outcome), (2, 1, 1, 0));
    let kinds: Vec<(EventType, i64)> = outcome
        .events
        .iter()
        .map(|event| {
            let body: Value = serde_json::from_str(&event.body).expect("json");
            (
                event.event_type,
                body["data"]["message_id"].as_i64().expect("id"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::NewMessage, 1),
            (EventType::EditedMessage, 1),
            (EventType::NewMessage, 2),
            (EventType::DeletedMessage, 1),
        ]
    );
    let row = stored(&db, channel_id, 1).await;
    assert_eq!(
        (row.text.as_str(), row.version, row.is_deleted),
        ("v2", 2, true)
    );
}

#[tokio::test]
async fn events_are_in_the_outbox_with_the_message_data() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    let when = now();
    let outcome = storage::messages::write_batch(
        &db,
        &[new(
            channel_id,
            ChannelMessage {
                media: Some(Media {
                    kind: MediaKind::Document,
                    reference: "document:5:6".to_owned(),
                }),
                ..message(12, "with a file")
            },
        )],
        when,
    )
    .await
    .expect("write");
    let stored_events = events::Entity::find().all(&db).await.expect("events");
    assert_eq!(stored_events.len(), 1);
    let row = &stored_events[0];
    assert_eq!(
        row.id, outcome.events[0].id,
        "the caller gets the stored event"
    );
    assert_eq!(row.event_type, "new_message");
    assert_eq!(row.channel_id, Some(channel_id));
    assert_eq!(row.tracked_user_id, None);
    assert!(
        row.fanned_out,
        "its webhook messages are queued with it (none: no endpoint)"
    );
    assert_eq!(row.created_at, when);

    let body: Value = serde_json::from_str(&row.body).expect("json");
    assert_eq!(common::timestamp(&body["timestamp"]), when);
    let data = &body["data"];
    assert_eq!(data["channel_id"], channel_id.to_string());
    assert_eq!(data["channel_username"], "news_channel");
    assert_eq!(data["telegram_channel_id"], TELEGRAM_CHANNEL_ID);
    assert_eq!(data["message_id"], 12);
    assert_eq!(common::timestamp(&data["date"]), at(720));
    assert_eq!(data["text"], "with a file");
    assert_eq!(data["sender_id"], 777);
    assert_eq!(data["media_type"], "document");
    assert_eq!(data["media_ref"], "document:5:6");
    assert_eq!(data["edit_date"], Value::Null);
    assert_eq!(data["version"], 1);
}

#[tokio::test]
async fn last_message_id_only_goes_up_and_unknown_channels_are_ignored() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    let other = add_channel(&db, 7_654_321, "other_channel").await;
    assert_eq!(channel(&db, channel_id).await.last_event_at, None);

    let first_at = now();
    storage::messages::write_batch(
        &db,
        &[
            new(channel_id, message(10, "ten")),
            new(channel_id, message(4, "four")),
            new(other, message(3, "three")),
        ],
        first_at,
    )
    .await
    .expect("write");
    let row = channel(&db, channel_id).await;
    assert_eq!(row.last_message_id, 10);
    assert_eq!(row.last_event_at, Some(first_at));
    assert_eq!(channel(&db, other).await.last_message_id, 3);

    // Older messages from a catch-up, and deletions of ids above it, do not move it; a repeat
    // makes no event, so last_event_at stays.
    let later = first_at + Duration::seconds(5);
    storage::messages::write_batch(
        &db,
        &[
            new(channel_id, message(6, "six")),
            new(channel_id, message(10, "ten")),
            delete(channel_id, &[500]),
        ],
        later,
    )
    .await
    .expect("write");
    let row = channel(&db, channel_id).await;
    assert_eq!(row.last_message_id, 10);
    assert_eq!(row.last_event_at, Some(later));
    storage::messages::write_batch(
        &db,
        &[new(channel_id, message(10, "ten"))],
        later + Duration::seconds(5),
    )
    .await
    .expect("write");
    assert_eq!(channel(&db, channel_id).await.last_event_at, Some(later));
    assert_eq!(channel(&db, other).await.last_event_at, Some(first_at));

    // A channel removed meanwhile: its changes are dropped, the rest of the batch is written.
    let outcome = write(
        &db,
        &[
            new(Uuid::now_v7(), message(1, "orphan")),
            delete(Uuid::now_v7(), &[1, 2]),
            new(channel_id, message(11, "eleven")),
        ],
    )
    .await;
    assert_eq!(counts(&outcome), (1, 0, 0, 3));
    assert_eq!(channel(&db, channel_id).await.last_message_id, 11);
}

#[tokio::test]
async fn large_batches_span_several_statements() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    let other = add_channel(&db, 7_654_321, "other_channel").await;
    // More rows than one INSERT takes (32,000 bound values / 14 columns).
    let batch: Vec<ChannelChange> = (1..=5000)
        .map(|id| {
            new(
                if id % 2 == 0 { channel_id } else { other },
                message(id, "text"),
            )
        })
        .collect();
    assert_eq!(counts(&write(&db, &batch).await), (5000, 0, 0, 0));

    // The same again, one in fifty with new contents: every stored row is read back.
    let again: Vec<ChannelChange> = (1..=5000)
        .map(|id| {
            let channel = if id % 2 == 0 { channel_id } else { other };
            if id % 50 == 0 {
                new(channel, edited(id, "changed", 9000))
            } else {
                new(channel, message(id, "text"))
            }
        })
        .collect();
    assert_eq!(counts(&write(&db, &again).await), (0, 100, 0, 4900));
    assert_eq!(stored(&db, channel_id, 4950).await.version, 2);
    assert_eq!(channel(&db, channel_id).await.last_message_id, 5000);
    assert_eq!(channel(&db, other).await.last_message_id, 4999);
    assert_eq!(outbox(&db).await.len(), 5100);
}

#[tokio::test]
async fn text_with_a_nul_is_stored_and_its_repeat_recognised() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    let outcome = write(&db, &[new(channel_id, message(1, "a\0b"))]).await;
    assert_eq!(counts(&outcome), (1, 0, 0, 0));
    assert_eq!(stored(&db, channel_id, 1).await.text, "a\u{FFFD}b");
    let again = write(&db, &[new(channel_id, message(1, "a\0b"))]).await;
    assert_eq!(counts(&again), (0, 0, 0, 1));
}

#[tokio::test]
async fn list_filters_and_pages_newest_first() {
    let (db, _dir) = common::migrated_database().await;
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    let other = add_channel(&db, 7_654_321, "other_channel").await;
    // Messages 1..=25, one a minute; every fifth mentions "Rust"; 3 and 4 are deleted.
    let mut batch: Vec<ChannelChange> = (1..=25)
        .map(|id| {
            let text = if id % 5 == 0 {
                format!("post {id} about RUST 100%")
            } else {
                format!("post {id}")
            };
            new(channel_id, message(id, &text))
        })
        .collect();
    batch.push(new(other, message(5, "rust elsewhere")));
    batch.push(delete(channel_id, &[3, 4]));
    write(&db, &batch).await;

    let ids = |page: &storage::page::Page<messages::Model>| -> Vec<i32> {
        page.items.iter().map(|m| m.telegram_message_id).collect()
    };
    let list = |filter: MessageFilter, limit: u64, cursor: Option<Uuid>| {
        let db = db.clone();
        async move {
            storage::messages::list(&db, channel_id, filter, limit, cursor, Order::Desc)
                .await
                .expect("list")
        }
    };

    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = list(MessageFilter::default(), 10, cursor).await;
        seen.extend(ids(&page));
        pages += 1;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, (1..=25).rev().collect::<Vec<_>>());

    let window = MessageFilter {
        since: Some(at(10 * 60)),
        until: Some(at(13 * 60)),
        ..MessageFilter::default()
    };
    assert_eq!(ids(&list(window, 100, None).await), vec![12, 11, 10]);

    let deleted = MessageFilter {
        deleted: Some(true),
        ..MessageFilter::default()
    };
    assert_eq!(ids(&list(deleted, 100, None).await), vec![4, 3]);
    let kept = MessageFilter {
        deleted: Some(false),
        ..MessageFilter::default()
    };
    assert_eq!(list(kept, 100, None).await.items.len(), 23);

    let text = MessageFilter {
        text: Some("rust".to_owned()),
        ..MessageFilter::default()
    };
    assert_eq!(
        ids(&list(text, 100, None).await),
        vec![25, 20, 15, 10, 5],
        "case-insensitive, this channel only"
    );
    // `%` is matched literally, not as a wildcard.
    let percent = MessageFilter {
        text: Some("0%".to_owned()),
        ..MessageFilter::default()
    };
    assert_eq!(list(percent, 100, None).await.items.len(), 5);
    let wildcard = MessageFilter {
        text: Some("post_1".to_owned()),
        ..MessageFilter::default()
    };
    assert!(list(wildcard, 100, None).await.items.is_empty());

    // Filters and pages together.
    let combined = MessageFilter {
        text: Some("post".to_owned()),
        deleted: Some(false),
        since: Some(at(5 * 60)),
        ..MessageFilter::default()
    };
    let first = list(combined.clone(), 4, None).await;
    assert_eq!(ids(&first), vec![25, 24, 23, 22]);
    let second = list(combined, 4, first.next_cursor).await;
    assert_eq!(ids(&second), vec![21, 20, 19, 18]);

    // A cursor from another channel ends the listing instead of restarting it.
    let foreign = stored(&db, other, 5).await.id;
    assert!(
        list(MessageFilter::default(), 10, Some(foreign))
            .await
            .items
            .is_empty()
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn http_lists_a_channels_messages_and_shows_one_with_its_versions() {
    let mut database_url = String::new();
    let app = common::spawn_app("", |config| {
        database_url = config.database.url.clone();
    })
    .await;
    let db = storage::connect(&database_url, 2).await.expect("connect");
    let channel_id = add_channel(&db, TELEGRAM_CHANNEL_ID, "news_channel").await;
    let mut batch: Vec<ChannelChange> = (1..=5)
        .map(|id| new(channel_id, message(id, &format!("Post number {id}"))))
        .collect();
    batch.push(edit(channel_id, edited(2, "Post number 2, corrected", 400)));
    batch.push(delete(channel_id, &[4]));
    write(&db, &batch).await;
    let base = format!("/api/channels/{channel_id}/messages");

    let (status, page) = app.get(&format!("{base}?limit=2")).await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<i64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| m["message_id"].as_i64().expect("message_id"))
        .collect();
    assert_eq!(ids, vec![5, 4]);
    assert_eq!(page["items"][1]["is_deleted"], true);
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let (status, next) = app.get(&format!("{base}?limit=2&cursor={cursor}")).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["items"][0]["message_id"], 3);

    let (status, found) = app
        .get(&format!(
            "{base}?text=CORRECTED&deleted=false&since=2026-01-01&until={}",
            (at(1000)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["items"].as_array().expect("items").len(), 1);
    assert_eq!(found["items"][0]["message_id"], 2);
    assert_eq!(found["next_cursor"], Value::Null);

    let (status, one) = app.get(&format!("{base}/2")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["text"], "Post number 2, corrected");
    assert_eq!(one["version"], 2);
    assert_eq!(common::timestamp(&one["edit_date"]), at(400));
    assert_eq!(one["versions"][0]["version"], 1);
    assert_eq!(one["versions"][0]["text"], "Post number 2");
    assert_eq!(one["versions"].as_array().expect("versions").len(), 1);

    for bad in [
        "since=yesterday",
        "deleted=maybe",
        "limit=0",
        "since=2026-02-01&until=2026-01-01",
        "colour=red",
    ] {
        let (status, body) = app.get(&format!("{base}?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    let unknown = Uuid::now_v7();
    let (status, body) = app.get(&format!("/api/channels/{unknown}/messages")).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = app
        .get(&format!("/api/channels/{unknown}/messages/1"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&format!("{base}/404")).await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/api/channels/not-a-uuid/messages").await;
    assert_eq!(status, 404);
}

/// The write throughput: `cargo nextest run --release --test messages_storage --run-ignored
/// only --no-capture` (add TGWATCH_TEST_DATABASE_URL for PostgreSQL).
#[tokio::test]
#[ignore = "a measurement, not a check: run it in release mode"]
async fn measure_write_throughput() {
    let (db, _dir) = common::migrated_database().await;
    let channels: usize = env_or("MEASURE_CHANNELS", 1000);
    let total: usize = env_or("MEASURE_MESSAGES", 200_000);
    let batch: usize = env_or("MEASURE_BATCH", 2000);
    let result = tgwatch_bench::message_writes::measure(&db, channels, total, batch)
        .await
        .expect("measure");
    println!(
        "{} new messages over {channels} channels in batches of {batch}: {} events in {:.2} s = {:.0} events/s",
        result.messages, result.events, result.seconds, result.events_per_second
    );
    assert_eq!(result.events, total);
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}
