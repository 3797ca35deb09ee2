//! The grammers session kept in `account_sessions` (SQLite, or PostgreSQL with
//! TGWATCH_TEST_DATABASE_URL): what is written through at once, what waits, and what is never
//! written again.

use crate::common;

use std::sync::Arc;

use grammers_session::{
    Session, SessionData,
    types::{PeerAuth, PeerInfo, UpdateState},
};
use sea_orm::DatabaseConnection;
use tgwatch_core::{
    clock::Clock,
    vault::{MasterKey, Vault},
};
use tgwatch_store::{self as storage, accounts::NewAccount};
use tgwatch_telegram::stored_session::{
    PersistedSession, SessionStore, StoredSession, UPDATE_STATE_WRITE_DELAY,
};
use uuid::Uuid;

struct Fixture {
    store: SessionStore,
    account_id: Uuid,
    _dir: tempfile::TempDir,
}

/// A store whose service clock runs at `speed`: the delayed update-state write waits for
/// [`UPDATE_STATE_WRITE_DELAY`] of that clock.
async fn fixture_at(speed: f64) -> Fixture {
    let (db, dir) = common::migrated_database().await;
    let account = storage::accounts::create(
        &db,
        NewAccount {
            label: "main".into(),
            phone: None,
            username: None,
            telegram_user_id: None,
            api_id: None,
            max_targets: None,
            max_channels: None,
            status: None,
        },
        chrono::Utc::now(),
    )
    .await
    .expect("account");
    let store = SessionStore {
        db,
        vault: Arc::new(Vault::new(MasterKey::generate())),
        clock: Clock::fast(speed),
    };
    Fixture {
        store,
        account_id: account.id,
        _dir: dir,
    }
}

impl Fixture {
    /// A session that has never been written, as a login starts one.
    fn new_session(&self) -> StoredSession {
        StoredSession::new(self.account_id, SessionData::default(), self.store.clone())
    }

    async fn stored(&self) -> storage::account_sessions::StoredSessionRow {
        storage::account_sessions::load(&self.store.db, &self.store.vault, self.account_id)
            .await
            .expect("load")
            .expect("a stored session")
    }

    /// The session as a restart would load it.
    async fn reloaded(&self) -> PersistedSession {
        StoredSession::load(self.account_id, self.store.clone())
            .await
            .expect("load")
            .expect("a stored session")
            .snapshot()
    }

    async fn stored_peers(&self) -> Vec<PeerInfo> {
        self.reloaded().await.peers
    }

    async fn stored_channel_pts(&self) -> Option<i32> {
        self.reloaded()
            .await
            .updates_state
            .channels
            .iter()
            .find(|channel| channel.id == CHANNEL)
            .map(|channel| channel.pts)
    }

    fn db(&self) -> &DatabaseConnection {
        &self.store.db
    }
}

async fn fixture() -> Fixture {
    fixture_at(1.0).await
}

const CHANNEL: i64 = 777;

fn channel_peer(hash: i64) -> PeerInfo {
    PeerInfo::Channel {
        id: CHANNEL,
        auth: Some(PeerAuth::from_hash(hash)),
        kind: None,
    }
}

#[tokio::test]
async fn a_burst_of_update_state_changes_waits_for_the_delay_on_the_service_clock() {
    // A service clock 100 times slower than real time: the delay is 100 s of real time, so the
    // burst below (200 in-memory changes) is over long before it however loaded the machine.
    let fixture = fixture_at(0.01).await;
    let session = fixture.new_session();
    session.persist().await.expect("first write");
    let first_write = fixture.stored().await.updated_at;
    for pts in 1..=200 {
        session
            .set_update_state(UpdateState::Channel { id: CHANNEL, pts })
            .await
            .expect("update state");
    }
    // Let a write that did not wait (the bug this guards against) reach the database.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(fixture.stored_channel_pts().await, None, "written at once");
    assert_eq!(fixture.stored().await.updated_at, first_write);
}

#[tokio::test]
async fn update_state_is_written_once_after_a_burst_and_not_after_the_session_is_gone() {
    // 10x: the delay is 100 ms of real time.
    let clock_speed = 10.0;
    let fixture = fixture_at(clock_speed).await;
    let real_delay = UPDATE_STATE_WRITE_DELAY.div_f64(clock_speed);
    let session = fixture.new_session();
    session.persist().await.expect("first write");
    assert_eq!(fixture.stored_channel_pts().await, None);

    // A burst of channel updates, as a busy channel makes: the last one is written after the
    // delay (polled with a generous deadline: a loaded machine may be late, never early).
    for pts in 1..=200 {
        session
            .set_update_state(UpdateState::Channel { id: CHANNEL, pts })
            .await
            .expect("update state");
    }
    let deadline = tokio::time::Instant::now() + real_delay * 100;
    while fixture.stored_channel_pts().await != Some(200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the update state was not written after the delay: {:?}",
            fixture.stored_channel_pts().await
        );
        tokio::time::sleep(real_delay / 4).await;
    }
    // Once: nothing changed since, so nothing more is written.
    let written = fixture.stored().await.updated_at;
    tokio::time::sleep(real_delay * 3).await;
    assert_eq!(fixture.stored().await.updated_at, written);

    // A change made just before the session is dropped (a reset) is never written.
    session
        .set_update_state(UpdateState::Channel {
            id: CHANNEL,
            pts: 300,
        })
        .await
        .expect("update state");
    drop(session);
    tokio::time::sleep(real_delay * 5).await;
    assert_eq!(fixture.stored_channel_pts().await, Some(200));
    assert_eq!(fixture.stored().await.updated_at, written);
    assert!(storage::ping(fixture.db()).await.is_ok());
}

#[tokio::test]
async fn a_channel_peer_is_written_when_it_is_new_or_changed_not_when_it_comes_again() {
    let fixture = fixture().await;
    let session = fixture.new_session();
    session.cache_peer(channel_peer(1)).await.expect("cache");
    let first = fixture.stored().await.updated_at;
    assert!(fixture.stored_peers().await.contains(&channel_peer(1)));

    // Every post of the channel carries it again: no write.
    for _ in 0..20 {
        session.cache_peer(channel_peer(1)).await.expect("cache");
    }
    assert_eq!(fixture.stored().await.updated_at, first);

    // A new access hash is news.
    session.cache_peer(channel_peer(2)).await.expect("cache");
    assert!(fixture.stored_peers().await.contains(&channel_peer(2)));
    assert!(fixture.stored().await.updated_at > first);
}
