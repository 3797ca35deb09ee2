//! `messages` and `message_versions`: the messages of monitored channels, written in batches
//! together with the events they cause, and read back page by page.
//!
//! The same message can reach [`write_batch`] more than once: two accounts push it around a
//! reassignment, and a catch-up from history overlaps live pushes. So every change is compared
//! with what is stored, and only an effective change (a message never stored, new contents, a
//! deletion of a message not yet deleted) is written and makes an event.
//!
//! The common case, a batch of messages never seen, costs one multi-row
//! `INSERT ... ON CONFLICT DO NOTHING RETURNING` per 2,000 messages, the outbox inserts and one
//! UPDATE of the channels: no read of stored messages. Stored messages are read only for edits,
//! deletions and new messages whose INSERT conflicted, in one SELECT per 16,000 of them.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet, hash_map::Entry},
};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, LikeExpr},
};
use serde_json::json;
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{channels, message_versions, messages},
    page::{Order, Page},
    sql::{BulkInsert, MAX_BOUND_VALUES, Sql},
};
use tgwatch_core::{
    events::{Event, EventType, MessageEvent},
    telegram::ChannelMessage,
};

/// A change of one monitored channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelChange {
    /// `channels.id`.
    pub channel_id: Uuid,
    /// Shown in the events; the stored username is used when this is `None`.
    pub channel_username: Option<String>,
    pub change: MessageEvent,
}

/// What a batch did. Every message counts once: a deletion of three ids counts three.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Messages stored for the first time from a new message.
    pub inserted: usize,
    /// Edits that changed contents, including edits of messages never seen (stored as version 1)
    /// and new messages whose contents differ from the stored ones.
    pub edited: usize,
    /// Messages marked deleted, including deletions of messages never seen.
    pub deleted: usize,
    /// Repeats, stale contents, changes to deleted messages, changes of unknown channels.
    pub ignored: usize,
    /// The events written to the outbox, in the order of the changes that caused them.
    pub events: Vec<Event>,
}

/// A message as it will be stored once the batch is written.
#[derive(Clone, Debug)]
struct Row {
    id: Uuid,
    channel_id: Uuid,
    message_id: i32,
    date: DateTime<Utc>,
    text: String,
    sender_id: Option<i64>,
    sender_name: Option<String>,
    media_type: Option<String>,
    media_ref: Option<String>,
    edit_date: Option<DateTime<Utc>>,
    version: i32,
    is_deleted: bool,
    deleted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    /// Whether the row must be written (inserted or updated) at the end of the batch.
    dirty: bool,
}

impl Row {
    fn from_message(channel_id: Uuid, message: &ChannelMessage, now: DateTime<Utc>) -> Row {
        Row {
            id: Uuid::now_v7(),
            channel_id,
            message_id: message.id,
            date: message.date.trunc_subsecs(6),
            text: storable(&message.text).into_owned(),
            sender_id: message.sender_id,
            sender_name: message
                .sender_name
                .as_deref()
                .map(|name| storable(name).into_owned()),
            media_type: message.media.as_ref().map(|m| m.kind.as_str().to_owned()),
            media_ref: message.media.as_ref().map(|m| m.reference.clone()),
            edit_date: message.edit_date.map(|at| at.trunc_subsecs(6)),
            version: 1,
            is_deleted: false,
            deleted_at: None,
            created_at: now,
            dirty: true,
        }
    }

    /// The row a deletion of a message never seen leaves, so that the deletion is recorded.
    fn deleted_unseen(channel_id: Uuid, message_id: i32, now: DateTime<Utc>) -> Row {
        Row {
            id: Uuid::now_v7(),
            channel_id,
            message_id,
            date: now,
            text: String::new(),
            sender_id: None,
            sender_name: None,
            media_type: None,
            media_ref: None,
            edit_date: None,
            version: 1,
            is_deleted: true,
            deleted_at: Some(now),
            created_at: now,
            dirty: true,
        }
    }

    fn from_model(model: messages::Model) -> Row {
        Row {
            id: model.id,
            channel_id: model.channel_id,
            message_id: model.telegram_message_id,
            date: model.date,
            text: model.text,
            sender_id: model.sender_id,
            sender_name: model.sender_name,
            media_type: model.media_type,
            media_ref: model.media_ref,
            edit_date: model.edit_date,
            version: model.version,
            is_deleted: model.is_deleted,
            deleted_at: model.deleted_at,
            created_at: model.created_at,
            dirty: false,
        }
    }

    /// How `message` compares with the stored contents.
    fn compare(&self, message: &ChannelMessage) -> Contents {
        let edit_date = message.edit_date.map(|at| at.trunc_subsecs(6));
        // `None < Some(_)`: the unedited original arriving after an edit is stale too.
        if edit_date < self.edit_date {
            return Contents::Stale;
        }
        let media_type = message.media.as_ref().map(|m| m.kind.as_str());
        let media_ref = message.media.as_ref().map(|m| m.reference.as_str());
        if edit_date == self.edit_date
            && storable(&message.text) == self.text.as_str()
            && media_type == self.media_type.as_deref()
            && media_ref == self.media_ref.as_deref()
        {
            Contents::Same
        } else {
            Contents::Changed
        }
    }

    /// Replaces the contents with `message`'s, keeping the current ones as a version.
    fn edit(&mut self, message: &ChannelMessage, now: DateTime<Utc>) -> message_versions::Model {
        let previous = message_versions::Model {
            id: Uuid::now_v7(),
            message_id: self.id,
            version: self.version,
            text: std::mem::replace(&mut self.text, storable(&message.text).into_owned()),
            media_type: self.media_type.take(),
            media_ref: self.media_ref.take(),
            edit_date: self.edit_date,
            recorded_at: now,
        };
        self.media_type = message.media.as_ref().map(|m| m.kind.as_str().to_owned());
        self.media_ref = message.media.as_ref().map(|m| m.reference.clone());
        self.edit_date = message.edit_date.map(|at| at.trunc_subsecs(6));
        if self.sender_id.is_none() {
            self.sender_id = message.sender_id;
        }
        if self.sender_name.is_none() {
            self.sender_name = message
                .sender_name
                .as_deref()
                .map(|name| storable(name).into_owned());
        }
        self.version += 1;
        self.dirty = true;
        previous
    }
}

/// The text as stored: PostgreSQL refuses NUL in text, and a message carrying one would fail its
/// batch on every retry.
fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

enum Contents {
    /// Older than what is stored (an earlier edit arriving late).
    Stale,
    /// A repeat.
    Same,
    Changed,
}

/// What the events say about a channel.
struct ChannelInfo {
    telegram_channel_id: Option<i64>,
    username: Option<String>,
}

/// Per channel: the highest id of a new message in the batch, and whether an event was written.
#[derive(Default)]
struct ChannelProgress {
    last_message_id: Option<i32>,
    had_event: bool,
}

type Key = (Uuid, i32);

/// Everything a batch will write, built in memory first.
struct BatchState<'a> {
    now: DateTime<Utc>,
    channels: HashMap<Uuid, ChannelInfo>,
    rows: HashMap<Key, Row>,
    versions: Vec<message_versions::Model>,
    /// What the events will say, with the position of the change that caused them: the events
    /// are made once sorted, so that their ids (UUID v7) follow the order of the batch.
    events: Vec<((usize, usize), EventType, Uuid, serde_json::Value)>,
    progress: HashMap<Uuid, ChannelProgress>,
    outcome: BatchOutcome,
    batch: &'a [ChannelChange],
}

impl BatchState<'_> {
    fn event(
        &mut self,
        at: (usize, usize),
        event_type: EventType,
        key: Key,
        previous_text: Option<Option<String>>,
    ) {
        let Some(row) = self.rows.get(&key) else {
            return;
        };
        let change = &self.batch[at.0];
        let channel = self.channels.get(&row.channel_id);
        let telegram_channel_id =
            channel
                .and_then(|c| c.telegram_channel_id)
                .or(match &change.change {
                    MessageEvent::New(message) | MessageEvent::Edited(message) => {
                        Some(message.channel_id)
                    }
                    MessageEvent::Deleted { .. } => None,
                });
        let username = change
            .channel_username
            .clone()
            .or_else(|| channel.and_then(|c| c.username.clone()));
        let mut data = json!({
            "channel_id": row.channel_id,
            "channel_username": username,
            "telegram_channel_id": telegram_channel_id,
            "message_id": row.message_id,
            "date": row.date,
            "text": row.text,
            "sender_id": row.sender_id,
            "sender_name": row.sender_name,
            "media_type": row.media_type,
            "media_ref": row.media_ref,
            "edit_date": row.edit_date,
            "version": row.version,
        });
        match event_type {
            EventType::EditedMessage => data["previous_text"] = json!(previous_text.flatten()),
            EventType::DeletedMessage => data["deleted_at"] = json!(row.deleted_at),
            _ => {}
        }
        self.progress.entry(row.channel_id).or_default().had_event = true;
        self.events.push((at, event_type, row.channel_id, data));
    }

    /// Applies a new or edited message to the stored row (or the absence of one).
    fn apply_contents(&mut self, at: usize, channel_id: Uuid, message: &ChannelMessage, new: bool) {
        let key = (channel_id, message.id);
        let now = self.now;
        match self.rows.entry(key) {
            Entry::Vacant(vacant) => {
                vacant.insert(Row::from_message(channel_id, message, now));
                if new {
                    self.outcome.inserted += 1;
                    self.event((at, 0), EventType::NewMessage, key, None);
                } else {
                    // An edit of a message never seen: its current contents are version 1.
                    self.outcome.edited += 1;
                    self.event((at, 0), EventType::EditedMessage, key, Some(None));
                }
            }
            Entry::Occupied(mut occupied) => {
                let row = occupied.get_mut();
                if row.is_deleted {
                    self.outcome.ignored += 1;
                    return;
                }
                match row.compare(message) {
                    Contents::Stale | Contents::Same => self.outcome.ignored += 1,
                    Contents::Changed => {
                        let previous = row.edit(message, now);
                        let previous_text = previous.text.clone();
                        self.versions.push(previous);
                        self.outcome.edited += 1;
                        self.event(
                            (at, 0),
                            EventType::EditedMessage,
                            key,
                            Some(Some(previous_text)),
                        );
                    }
                }
            }
        }
    }

    fn apply_deletion(&mut self, at: (usize, usize), channel_id: Uuid, message_id: i32) {
        let key = (channel_id, message_id);
        let now = self.now;
        match self.rows.entry(key) {
            Entry::Vacant(vacant) => {
                vacant.insert(Row::deleted_unseen(channel_id, message_id, now));
            }
            Entry::Occupied(mut occupied) => {
                let row = occupied.get_mut();
                if row.is_deleted {
                    self.outcome.ignored += 1;
                    return;
                }
                row.is_deleted = true;
                row.deleted_at = Some(now);
                row.dirty = true;
            }
        }
        self.outcome.deleted += 1;
        self.event(at, EventType::DeletedMessage, key, None);
    }
}

/// Writes a batch of channel changes in one write transaction: the messages, the earlier
/// versions of edited ones, one outbox event per effective change, and each channel's
/// `last_message_id` (raised by new messages only, never lowered) and `last_event_at`.
///
/// - A new message already stored is a repeat, unless its contents differ (text, media, or a
///   later `edit_date`): then it is an edit, as a catch-up from history only sees current
///   contents.
/// - An edit keeps the current contents in `message_versions` (numbered 1, 2, ...) and bumps
///   `messages.version`; a repeat of it changes nothing; contents older than the stored ones
///   (by `edit_date`) are ignored. An edit of a message never seen stores it as version 1.
/// - A deletion marks the message; a deletion of a message never seen stores an empty,
///   deleted row dated `now`. A deleted message stays as it was: later contents are ignored.
/// - Changes of a channel that no longer exists are ignored.
pub async fn write_batch(
    db: &DatabaseConnection,
    batch: &[ChannelChange],
    now: DateTime<Utc>,
) -> Result<BatchOutcome, StorageError> {
    if batch.is_empty() {
        return Ok(BatchOutcome::default());
    }
    let now = now.trunc_subsecs(6);
    let backend = db.get_database_backend();
    let txn = super::begin_write(db, "starting a message batch").await?;
    let channels = load_channels(&txn, batch).await?;
    let mut state = BatchState {
        now,
        channels,
        rows: HashMap::new(),
        versions: Vec::new(),
        events: Vec::new(),
        progress: HashMap::new(),
        outcome: BatchOutcome::default(),
        batch,
    };

    // The first change of each message decides whether it can take the fast path: a new
    // message is inserted at once with ON CONFLICT DO NOTHING, and only the ones that conflict
    // are read back. Later changes of the same message go through the general path.
    let mut seen: HashSet<Key> = HashSet::new();
    let mut first_new: Vec<usize> = Vec::new();
    for (at, change) in batch.iter().enumerate() {
        if !state.channels.contains_key(&change.channel_id) {
            state.outcome.ignored += match &change.change {
                MessageEvent::Deleted { ids } => ids.len(),
                _ => 1,
            };
            continue;
        }
        match &change.change {
            MessageEvent::New(message) => {
                let progress = state.progress.entry(change.channel_id).or_default();
                progress.last_message_id = progress.last_message_id.max(Some(message.id));
                if seen.insert((change.channel_id, message.id)) {
                    first_new.push(at);
                }
            }
            MessageEvent::Edited(message) => {
                seen.insert((change.channel_id, message.id));
            }
            MessageEvent::Deleted { ids } => {
                seen.extend(ids.iter().map(|id| (change.channel_id, *id)));
            }
        }
    }
    if state.outcome.ignored > 0 {
        tracing::debug!(
            ignored = state.outcome.ignored,
            "message changes of channels that no longer exist"
        );
    }

    let mut resolved = vec![false; batch.len()];
    let fresh: Vec<Row> = first_new
        .iter()
        .filter_map(|at| match &batch[*at].change {
            MessageEvent::New(message) => {
                Some(Row::from_message(batch[*at].channel_id, message, now))
            }
            _ => None,
        })
        .collect();
    let inserted = insert_new(&txn, backend, &fresh).await?;
    for (at, mut row) in first_new.iter().zip(fresh) {
        let key = (row.channel_id, row.message_id);
        if inserted.contains(&key) {
            row.dirty = false;
            state.rows.insert(key, row);
            state.outcome.inserted += 1;
            state.event((*at, 0), EventType::NewMessage, key, None);
            resolved[*at] = true;
        }
    }

    let missing: Vec<Key> = seen
        .into_iter()
        .filter(|key| !state.rows.contains_key(key))
        .collect();
    for row in load_rows(&txn, backend, &missing).await? {
        state.rows.insert(
            (row.channel_id, row.telegram_message_id),
            Row::from_model(row),
        );
    }

    for (at, change) in batch.iter().enumerate() {
        if resolved[at] || !state.channels.contains_key(&change.channel_id) {
            continue;
        }
        match &change.change {
            MessageEvent::New(message) => {
                state.apply_contents(at, change.channel_id, message, true)
            }
            MessageEvent::Edited(message) => {
                state.apply_contents(at, change.channel_id, message, false)
            }
            MessageEvent::Deleted { ids } => {
                for (index, id) in ids.iter().enumerate() {
                    state.apply_deletion((at, index), change.channel_id, *id);
                }
            }
        }
    }

    let dirty: Vec<&Row> = state.rows.values().filter(|row| row.dirty).collect();
    upsert_rows(&txn, backend, &dirty, now).await?;
    insert_versions(&txn, backend, &state.versions).await?;
    state.events.sort_by_key(|(at, ..)| *at);
    let events: Vec<Event> = state
        .events
        .into_iter()
        .map(|(_, event_type, channel_id, data)| {
            let mut event = Event::new(event_type, now, data);
            event.channel_id = Some(channel_id);
            event
        })
        .collect();
    super::webhooks::insert_events(&txn, &events).await?;
    update_channels(&txn, backend, &state.progress, now).await?;
    txn.commit().await.doing("committing a message batch")?;
    let mut outcome = state.outcome;
    outcome.events = events;
    Ok(outcome)
}

/// The batch's channels that exist, with what the events say about them.
async fn load_channels(
    txn: &DatabaseTransaction,
    batch: &[ChannelChange],
) -> Result<HashMap<Uuid, ChannelInfo>, StorageError> {
    let ids: Vec<Uuid> = batch
        .iter()
        .map(|change| change.channel_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut found = HashMap::new();
    for chunk in ids.chunks(MAX_BOUND_VALUES) {
        let rows: Vec<(Uuid, Option<i64>, Option<String>)> = channels::Entity::find()
            .select_only()
            .columns([
                channels::Column::Id,
                channels::Column::TelegramChannelId,
                channels::Column::Username,
            ])
            .filter(channels::Column::Id.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(txn)
            .await
            .doing("loading the channels of a message batch")?;
        found.extend(rows.into_iter().map(|(id, telegram_channel_id, username)| {
            (
                id,
                ChannelInfo {
                    telegram_channel_id,
                    username,
                },
            )
        }));
    }
    Ok(found)
}

/// The insert of `rows` into `messages`, each updated at `updated_at(row)`.
fn insert_rows(
    backend: DbBackend,
    rows: &[&Row],
    updated_at: impl Fn(&Row) -> DateTime<Utc>,
) -> BulkInsert {
    let mut insert = BulkInsert::new(backend, "messages", rows.len());
    insert
        .column("id", rows.iter().map(|row| row.id))
        .column("channel_id", rows.iter().map(|row| row.channel_id))
        .column("telegram_message_id", rows.iter().map(|row| row.message_id))
        .column("date", rows.iter().map(|row| row.date))
        .column("text", rows.iter().map(|row| row.text.clone()))
        .nullable("sender_id", rows.iter().map(|row| row.sender_id))
        .nullable(
            "sender_name",
            rows.iter().map(|row| row.sender_name.clone()),
        )
        .nullable("media_type", rows.iter().map(|row| row.media_type.clone()))
        .nullable("media_ref", rows.iter().map(|row| row.media_ref.clone()))
        .nullable("edit_date", rows.iter().map(|row| row.edit_date))
        .column("version", rows.iter().map(|row| row.version))
        .column("is_deleted", rows.iter().map(|row| row.is_deleted))
        .nullable("deleted_at", rows.iter().map(|row| row.deleted_at))
        .column("created_at", rows.iter().map(|row| row.created_at))
        .column("updated_at", rows.iter().map(|row| updated_at(row)));
    insert
}

/// Inserts messages never stored; returns the keys that were inserted (the others exist).
async fn insert_new(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    rows: &[Row],
) -> Result<HashSet<Key>, StorageError> {
    let mut inserted = HashSet::with_capacity(rows.len());
    let rows: Vec<&Row> = rows.iter().collect();
    let mut insert = insert_rows(backend, &rows, |row| row.created_at);
    insert.then(
        " ON CONFLICT (channel_id, telegram_message_id) DO NOTHING \
         RETURNING channel_id, telegram_message_id",
    );
    for statement in insert.statements() {
        for returned in txn
            .query_all_raw(statement)
            .await
            .doing("inserting new messages")?
        {
            let channel_id: Uuid = returned
                .try_get("", "channel_id")
                .doing("reading an inserted message")?;
            let message_id: i32 = returned
                .try_get("", "telegram_message_id")
                .doing("reading an inserted message")?;
            inserted.insert((channel_id, message_id));
        }
    }
    Ok(inserted)
}

/// The stored messages among `keys`, in one statement per 16,000 keys: a join with the keys
/// as a VALUES list walks the unique (channel_id, telegram_message_id) index once per key.
async fn load_rows(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    keys: &[Key],
) -> Result<Vec<messages::Model>, StorageError> {
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(MAX_BOUND_VALUES / 2) {
        // VALUES columns are named column1, column2... on SQLite and PostgreSQL alike.
        let mut sql = Sql::new(backend, "SELECT messages.* FROM messages JOIN (VALUES ");
        sql.tuples(
            chunk
                .iter()
                .map(|(channel_id, message_id)| [(*channel_id).into(), (*message_id).into()]),
        );
        sql.push(
            ") AS wanted ON messages.channel_id = wanted.column1 \
             AND messages.telegram_message_id = wanted.column2",
        );
        found.extend(
            messages::Entity::find()
                .from_raw_sql(sql.statement())
                .all(txn)
                .await
                .doing("loading stored messages")?,
        );
    }
    Ok(found)
}

/// Writes the rows the batch created or changed: new ones are inserted, stored ones get their
/// new contents, version and deletion mark.
async fn upsert_rows(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    rows: &[&Row],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let mut insert = insert_rows(backend, rows, |_| now);
    insert.then(
        " ON CONFLICT (channel_id, telegram_message_id) DO UPDATE SET \
         text = excluded.text, sender_id = excluded.sender_id, \
         sender_name = excluded.sender_name, \
         media_type = excluded.media_type, media_ref = excluded.media_ref, \
         edit_date = excluded.edit_date, version = excluded.version, \
         is_deleted = excluded.is_deleted, deleted_at = excluded.deleted_at, \
         updated_at = excluded.updated_at",
    );
    insert.execute(txn, "saving changed messages").await
}

async fn insert_versions(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    versions: &[message_versions::Model],
) -> Result<(), StorageError> {
    let mut insert = BulkInsert::new(backend, "message_versions", versions.len());
    insert
        .column("id", versions.iter().map(|version| version.id))
        .column(
            "message_id",
            versions.iter().map(|version| version.message_id),
        )
        .column("version", versions.iter().map(|version| version.version))
        .column("text", versions.iter().map(|version| version.text.clone()))
        .nullable(
            "media_type",
            versions.iter().map(|version| version.media_type.clone()),
        )
        .nullable(
            "media_ref",
            versions.iter().map(|version| version.media_ref.clone()),
        )
        .nullable(
            "edit_date",
            versions.iter().map(|version| version.edit_date),
        )
        .column(
            "recorded_at",
            versions.iter().map(|version| version.recorded_at),
        );
    insert.execute(txn, "saving earlier message versions").await
}

/// Raises `last_message_id` and sets `last_event_at`, for all the batch's channels in one
/// statement per 10,000 (UPDATE ... FROM, which SQLite has since 3.33).
async fn update_channels(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    progress: &HashMap<Uuid, ChannelProgress>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let changed: Vec<(Uuid, i32, Option<DateTime<Utc>>)> = progress
        .iter()
        .filter(|(_, p)| p.had_event || p.last_message_id.is_some())
        .map(|(id, p)| {
            (
                *id,
                p.last_message_id.unwrap_or(0),
                p.had_event.then_some(now),
            )
        })
        .collect();
    for chunk in changed.chunks(MAX_BOUND_VALUES / 3) {
        let mut sql = Sql::new(
            backend,
            "UPDATE channels SET \
             last_message_id = CASE WHEN batch.column2 > channels.last_message_id \
             THEN batch.column2 ELSE channels.last_message_id END, \
             last_event_at = COALESCE(batch.column3, channels.last_event_at) \
             FROM (VALUES ",
        );
        sql.tuples(chunk.iter().map(|(id, last_message_id, last_event_at)| {
            [
                (*id).into(),
                (*last_message_id).into(),
                (*last_event_at).into(),
            ]
        }));
        sql.push(") AS batch WHERE channels.id = batch.column1");
        txn.execute_raw(sql.statement())
            .await
            .doing("updating the channels of a message batch")?;
    }
    Ok(())
}

/// Filters of [`list`]; `None` is no filter.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    /// Messages sent at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Messages sent before this.
    pub until: Option<DateTime<Utc>>,
    pub deleted: Option<bool>,
    /// A substring of the text, any case (on SQLite, case folds for ASCII letters only).
    pub text: Option<String>,
}

/// A channel's messages by Telegram message id (which grows with time within a channel), newest
/// first for [`Order::Desc`]. `cursor` is the `next_cursor` of the previous page: the row id of
/// its last message; a cursor that is not a message of this channel gives an empty page.
pub async fn list(
    db: &DatabaseConnection,
    channel_id: Uuid,
    filter: MessageFilter,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<messages::Model>, StorageError> {
    let mut select = messages::Entity::find().filter(messages::Column::ChannelId.eq(channel_id));
    if let Some(cursor) = cursor {
        let after = messages::Entity::find_by_id(cursor)
            .filter(messages::Column::ChannelId.eq(channel_id))
            .select_only()
            .column(messages::Column::TelegramMessageId)
            .into_tuple::<i32>()
            .one(db)
            .await
            .doing("finding a message cursor")?;
        let Some(after) = after else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        select = select.filter(match order {
            Order::Asc => messages::Column::TelegramMessageId.gt(after),
            Order::Desc => messages::Column::TelegramMessageId.lt(after),
        });
    }
    if let Some(since) = filter.since {
        select = select.filter(messages::Column::Date.gte(since));
    }
    if let Some(until) = filter.until {
        select = select.filter(messages::Column::Date.lt(until));
    }
    if let Some(deleted) = filter.deleted {
        select = select.filter(messages::Column::IsDeleted.eq(deleted));
    }
    if let Some(text) = filter.text.filter(|text| !text.is_empty()) {
        select = select.filter(text_contains(db.get_database_backend(), &text));
    }
    let select = match order {
        Order::Asc => select.order_by_asc(messages::Column::TelegramMessageId),
        Order::Desc => select.order_by_desc(messages::Column::TelegramMessageId),
    };
    let mut items = select
        .limit(limit + 1)
        .all(db)
        .await
        .doing("listing messages")?;
    let next_cursor = if items.len() as u64 > limit {
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        items.last().map(|row| row.id)
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// `text` contains `needle`, any case: ILIKE on PostgreSQL; on SQLite LIKE, which ignores the
/// case of ASCII letters only (lowering both sides would not help: SQLite's lower() is ASCII
/// only too, and would then miss exact non-ASCII matches). `%` and `_` in the needle match
/// themselves.
fn text_contains(backend: DbBackend, needle: &str) -> Expr {
    // In here only: ExprTrait's `max` would shadow Ord's elsewhere in the module.
    use sea_orm::sea_query::ExprTrait;
    const ESCAPE: char = '!';
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | ESCAPE) {
            pattern.push(ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    match backend {
        // Written out: sea-query wraps `pattern ESCAPE c` in parentheses after ILIKE, which
        // PostgreSQL refuses.
        DbBackend::Postgres => {
            Expr::cust_with_values(format!("\"text\" ILIKE $1 ESCAPE '{ESCAPE}'"), [pattern])
        }
        _ => Expr::col((messages::Entity, messages::Column::Text))
            .like(LikeExpr::new(pattern).escape(ESCAPE)),
    }
}

/// One message of a channel by its Telegram message id.
pub async fn get(
    db: &DatabaseConnection,
    channel_id: Uuid,
    telegram_message_id: i32,
) -> Result<Option<messages::Model>, StorageError> {
    messages::Entity::find()
        .filter(messages::Column::ChannelId.eq(channel_id))
        .filter(messages::Column::TelegramMessageId.eq(telegram_message_id))
        .one(db)
        .await
        .doing("loading a message")
}

/// The earlier contents of a message (`messages.id`), oldest first; the current contents are
/// the message itself.
pub async fn versions(
    db: &DatabaseConnection,
    message_id: Uuid,
) -> Result<Vec<message_versions::Model>, StorageError> {
    message_versions::Entity::find()
        .filter(message_versions::Column::MessageId.eq(message_id))
        .order_by_asc(message_versions::Column::Version)
        .all(db)
        .await
        .doing("loading message versions")
}

/// Whether a channel exists (the HTTP API answers 404 otherwise).
pub async fn channel_exists(
    db: &DatabaseConnection,
    channel_id: Uuid,
) -> Result<bool, StorageError> {
    Ok(channels::Entity::find_by_id(channel_id)
        .select_only()
        .column(channels::Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await
        .doing("looking up a channel")?
        .is_some())
}
