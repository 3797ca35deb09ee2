//! A grammers [`Session`] kept in our database (`account_sessions`), sealed with the master key.
//!
//! grammers asks for the home DC and DC options synchronously on every request, so the whole
//! state lives in memory; each change that matters for logging in again is written through
//! before grammers' call returns: the home DC, the DC options (they carry the auth key), the self
//! user, channel peers (their access hashes are needed to read the channel) and the update
//! state. Other users are cached in memory only: the service keeps its targets' access hashes
//! in `tracked_users`, and a 10,000-user cache rewritten on every update would cost far more
//! than it saves.
//!
//! Writes go one at a time, each with a snapshot taken when its turn comes, so an older state
//! can never overwrite a newer one.
//!
//! The update state is the exception to writing through: it changes with every update (a
//! channel post moves the channel's pts), and a write per update capped channel monitoring at
//! the database's write rate. It is written at most once per [`UPDATE_STATE_WRITE_DELAY`]
//! of service time instead. What a crash loses is harmless: grammers starts from the older state and
//! `getDifference` hands the updates over again, which storage keeps only once.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use grammers_session::{
    BoxFuture, Session, SessionData,
    types::{DcOption, PeerId, PeerInfo, UpdateState, UpdatesState},
};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use tgwatch_core::{clock::Clock, vault::Vault};
use tgwatch_store::{self as storage, StorageError};

/// What is written to the database: [`SessionData`] without the in-memory-only peers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PersistedSession {
    pub home_dc: i32,
    pub dc_options: Vec<DcOption>,
    pub peers: Vec<PeerInfo>,
    pub updates_state: UpdatesState,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the stored session cannot be read: {0}")]
    Format(String),
}

/// The prefix of our own exported session strings (`tgwatch export-session`).
const EXPORT_PREFIX: &str = "tgw1:";

impl PersistedSession {
    pub fn from_data(data: &SessionData) -> PersistedSession {
        let mut dc_options: Vec<DcOption> = data.dc_options.values().cloned().collect();
        dc_options.sort_by_key(|option| option.id);
        let peers = data
            .peer_infos
            .iter()
            .filter(|(id, info)| **id != PeerId::self_user() && is_persisted(info))
            .map(|(_, info)| info.clone())
            .collect();
        PersistedSession {
            home_dc: data.home_dc,
            dc_options,
            peers,
            updates_state: data.updates_state.clone(),
        }
    }

    pub fn into_data(self) -> SessionData {
        let mut peer_infos = HashMap::new();
        for info in self.peers {
            if is_self(&info) {
                peer_infos.insert(PeerId::self_user(), info.clone());
            }
            peer_infos.insert(info.id(), info);
        }
        SessionData {
            home_dc: self.home_dc,
            dc_options: self
                .dc_options
                .into_iter()
                .map(|option| (option.id, option))
                .collect(),
            peer_infos,
            updates_state: self.updates_state,
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, SessionError> {
        serde_json::to_vec(self).map_err(|error| SessionError::Format(error.to_string()))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<PersistedSession, SessionError> {
        serde_json::from_slice(bytes).map_err(|error| SessionError::Format(error.to_string()))
    }

    /// Whether the home DC has an auth key, i.e. the session can talk to Telegram at all.
    pub fn has_auth_key(&self) -> bool {
        self.dc_options
            .iter()
            .any(|option| option.id == self.home_dc && option.auth_key.is_some())
    }

    /// The self user, once logged in.
    pub fn self_user_id(&self) -> Option<i64> {
        self.peers
            .iter()
            .find(|info| is_self(info))
            .map(|info| match info {
                PeerInfo::User { id, .. }
                | PeerInfo::Chat { id }
                | PeerInfo::Channel { id, .. } => *id,
            })
    }

    /// Our own export format: `tgw1:` and base64url of the JSON. It holds the auth key in the
    /// clear, like any session string: whoever has it is logged in as the account.
    pub fn export(&self) -> Result<String, SessionError> {
        Ok(format!(
            "{EXPORT_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.to_bytes()?)
        ))
    }

    pub fn import(text: &str) -> Result<PersistedSession, SessionError> {
        let body = text.trim().strip_prefix(EXPORT_PREFIX).ok_or_else(|| {
            SessionError::Format(format!(
                "a tgwatch session string starts with `{EXPORT_PREFIX}`"
            ))
        })?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|error| SessionError::Format(format!("not base64url: {error}")))?;
        PersistedSession::from_bytes(&bytes)
    }
}

impl PersistedSession {
    /// A Telethon `StringSession`: `1` and base64url of the DC id (1 byte), its IPv4 (4 bytes)
    /// or IPv6 (16 bytes) address, the port (2 bytes, big endian) and the 256-byte auth key.
    /// Telethon keeps no self user and no update state: the first connection fetches both.
    pub fn from_telethon(text: &str) -> Result<PersistedSession, SessionError> {
        let bad = |why: &str| SessionError::Format(format!("not a Telethon StringSession: {why}"));
        let body = text
            .trim()
            .strip_prefix('1')
            .ok_or_else(|| bad("it must start with the version `1`"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE
            .decode(body)
            .or_else(|_| URL_SAFE_NO_PAD.decode(body.trim_end_matches('=')))
            .map_err(|error| bad(&format!("not base64url ({error})")))?;
        let (dc_id, address_len) = match bytes.len() {
            263 => (bytes[0], 4),
            275 => (bytes[0], 16),
            other => return Err(bad(&format!("{other} bytes instead of 263 or 275"))),
        };
        let address = &bytes[1..1 + address_len];
        let port = u16::from_be_bytes([bytes[1 + address_len], bytes[2 + address_len]]);
        let mut auth_key = [0_u8; 256];
        auth_key.copy_from_slice(&bytes[3 + address_len..]);

        let dc_id = i32::from(dc_id);
        let mut data = SessionData {
            home_dc: dc_id,
            ..SessionData::default()
        };
        let option = data
            .dc_options
            .get_mut(&dc_id)
            .ok_or_else(|| bad(&format!("DC {dc_id} is not one of Telegram's DCs 1 to 5")))?;
        match <[u8; 4]>::try_from(address) {
            Ok(ipv4) => option.ipv4 = std::net::SocketAddrV4::new(ipv4.into(), port),
            Err(_) => {
                let mut ipv6 = [0_u8; 16];
                ipv6.copy_from_slice(address);
                option.ipv6 = std::net::SocketAddrV6::new(ipv6.into(), port, 0, 0);
                // The DC's built-in IPv4 address may not be where this session lives: leave
                // none, so that the connection goes over IPv6 (see `needs_ipv6`).
                option.ipv4 = std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0);
            }
        }
        option.auth_key = Some(auth_key);
        Ok(PersistedSession::from_data(&data))
    }
}

impl PersistedSession {
    /// The home DC as a Telethon `StringSession` (the format [`Self::from_telethon`] reads), over
    /// IPv4: Telethon holds one DC, its address and its key, nothing else.
    pub fn to_telethon(&self) -> Result<String, SessionError> {
        let option = self
            .dc_options
            .iter()
            .find(|option| option.id == self.home_dc)
            .ok_or_else(|| {
                SessionError::Format(format!(
                    "the session has no address for its home DC {}",
                    self.home_dc
                ))
            })?;
        let auth_key = option.auth_key.ok_or_else(|| {
            SessionError::Format(format!(
                "the session has no auth key for its home DC {}",
                self.home_dc
            ))
        })?;
        let dc_id = u8::try_from(self.home_dc).map_err(|_| {
            SessionError::Format(format!(
                "DC {} does not fit Telethon's format",
                self.home_dc
            ))
        })?;
        let mut bytes = Vec::with_capacity(263);
        bytes.push(dc_id);
        bytes.extend_from_slice(&option.ipv4.ip().octets());
        bytes.extend_from_slice(&option.ipv4.port().to_be_bytes());
        bytes.extend_from_slice(&auth_key);
        Ok(format!(
            "1{}",
            base64::engine::general_purpose::URL_SAFE.encode(bytes)
        ))
    }
}

/// Whether the session's home DC is reachable over IPv6 only: a session imported with an IPv6
/// address (a Telethon session holds one address) knows no IPv4 address for it. grammers dials
/// either every DC's IPv4 or every DC's IPv6 address, as its connection parameters say.
pub fn needs_ipv6<S: Session + ?Sized>(session: &S) -> bool {
    session
        .home_dc_id()
        .ok()
        .and_then(|dc_id| session.dc_option(dc_id).ok().flatten())
        .is_some_and(|option| option.ipv4.ip().is_unspecified())
}

fn is_self(info: &PeerInfo) -> bool {
    matches!(
        info,
        PeerInfo::User {
            is_self: Some(true),
            ..
        }
    )
}

fn is_persisted(info: &PeerInfo) -> bool {
    is_self(info) || matches!(info, PeerInfo::Channel { .. })
}

/// Where sessions are written: the database, the vault that seals them, the clock that dates
/// them.
#[derive(Clone)]
pub struct SessionStore {
    pub db: DatabaseConnection,
    pub vault: Arc<Vault>,
    pub clock: Clock,
}

/// How long (service time) an update-state change may wait before it is written (see the
/// module documentation).
pub const UPDATE_STATE_WRITE_DELAY: Duration = Duration::from_secs(1);

/// One account's session, in memory and written through to `account_sessions`.
pub struct StoredSession {
    inner: Arc<SessionCell>,
}

/// The session's state, shared with the delayed update-state write.
struct SessionCell {
    account_id: Uuid,
    data: Mutex<SessionData>,
    store: SessionStore,
    /// Serialises writes (see the module documentation).
    write_turn: tokio::sync::Mutex<()>,
    /// Whether a delayed update-state write is waiting.
    state_write_pending: AtomicBool,
    /// Off for a session on trial (see [`StoredSession::unsaved`]) until it is persisted.
    writes_through: AtomicBool,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("account_id", &self.inner.account_id)
            .finish_non_exhaustive()
    }
}

impl StoredSession {
    pub fn new(account_id: Uuid, data: SessionData, store: SessionStore) -> StoredSession {
        StoredSession::with_writes(account_id, data, store, true)
    }

    /// A session that keeps every change in memory until [`StoredSession::persist`] is called,
    /// and writes through from then on: an imported session must prove that it works before it
    /// may replace the account's stored one.
    pub fn unsaved(account_id: Uuid, data: SessionData, store: SessionStore) -> StoredSession {
        StoredSession::with_writes(account_id, data, store, false)
    }

    fn with_writes(
        account_id: Uuid,
        data: SessionData,
        store: SessionStore,
        writes_through: bool,
    ) -> StoredSession {
        StoredSession {
            inner: Arc::new(SessionCell {
                account_id,
                data: Mutex::new(data),
                store,
                write_turn: tokio::sync::Mutex::new(()),
                state_write_pending: AtomicBool::new(false),
                writes_through: AtomicBool::new(writes_through),
            }),
        }
    }

    /// The account's stored session, if it has one.
    pub async fn load(
        account_id: Uuid,
        store: SessionStore,
    ) -> Result<Option<StoredSession>, SessionError> {
        let Some(row) =
            storage::account_sessions::load(&store.db, &store.vault, account_id).await?
        else {
            return Ok(None);
        };
        let data = PersistedSession::from_bytes(&row.session)?.into_data();
        Ok(Some(StoredSession::new(account_id, data, store)))
    }

    pub fn account_id(&self) -> Uuid {
        self.inner.account_id
    }

    fn data(&self) -> MutexGuard<'_, SessionData> {
        self.inner.data()
    }

    pub fn snapshot(&self) -> PersistedSession {
        self.inner.snapshot()
    }

    /// Writes the current state; from then on every change is written through.
    pub async fn persist(&self) -> Result<(), SessionError> {
        self.inner.writes_through.store(true, Ordering::Release);
        self.inner.persist().await
    }

    /// Writes the update state after [`UPDATE_STATE_WRITE_DELAY`] of service time (the store's
    /// clock, like every other timer of the service), unless a write is already
    /// waiting (it will take this change too, as it snapshots when it runs). Nothing is written
    /// once the session is dropped: a session reset must not be undone by a late write.
    fn schedule_state_write(&self) {
        if self.inner.state_write_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let cell = Arc::downgrade(&self.inner);
        let clock = self.inner.store.clock;
        tokio::spawn(async move {
            clock.sleep(UPDATE_STATE_WRITE_DELAY).await;
            let Some(cell) = cell.upgrade() else {
                return;
            };
            cell.state_write_pending.store(false, Ordering::Release);
            if let Err(error) = cell.persist().await {
                tracing::warn!(
                    account_id = %cell.account_id,
                    %error,
                    "writing the update state failed; the next change writes it again"
                );
            }
        });
    }
}

impl SessionCell {
    fn data(&self) -> MutexGuard<'_, SessionData> {
        // Every change is a single map or field assignment: a panic cannot leave it half done.
        self.data.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> PersistedSession {
        PersistedSession::from_data(&self.data())
    }

    async fn persist(&self) -> Result<(), SessionError> {
        if !self.writes_through.load(Ordering::Acquire) {
            return Ok(());
        }
        let _turn = self.write_turn.lock().await;
        let snapshot = self.snapshot();
        storage::account_sessions::save_session(
            &self.store.db,
            &self.store.vault,
            self.account_id,
            &snapshot.to_bytes()?,
            snapshot.home_dc,
            self.store.clock.now(),
        )
        .await?;
        Ok(())
    }
}

impl Session for StoredSession {
    type Error = SessionError;

    fn home_dc_id(&self) -> Result<i32, SessionError> {
        Ok(self.data().home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            self.data().home_dc = dc_id;
            self.inner.persist().await
        })
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, SessionError> {
        Ok(self.data().dc_options.get(&dc_id).cloned())
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), SessionError>> {
        let dc_option = dc_option.clone();
        Box::pin(async move {
            self.data().dc_options.insert(dc_option.id, dc_option);
            self.inner.persist().await
        })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, SessionError>> {
        Box::pin(async move { Ok(self.data().peer_infos.get(&peer).cloned()) })
    }

    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            // Every update carries its peers again: only news is worth a write.
            let changed = {
                let mut data = self.data();
                let mut changed = false;
                if is_self(&peer) {
                    changed |= data.peer_infos.get(&PeerId::self_user()) != Some(&peer);
                    data.peer_infos.insert(PeerId::self_user(), peer.clone());
                }
                match data.peer_infos.get_mut(&peer.id()) {
                    Some(cached) => {
                        let before = cached.clone();
                        cached.extend_info(&peer);
                        changed |= *cached != before;
                    }
                    None => {
                        data.peer_infos.insert(peer.id(), peer.clone());
                        changed = true;
                    }
                }
                changed
            };
            if changed && is_persisted(&peer) {
                self.inner.persist().await?;
            }
            Ok(())
        })
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, SessionError>> {
        Box::pin(async move { Ok(self.data().updates_state.clone()) })
    }

    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            {
                let mut data = self.data();
                let state = &mut data.updates_state;
                match update {
                    UpdateState::All(all) => *state = all,
                    UpdateState::Primary { pts, date, seq } => {
                        state.pts = pts;
                        state.date = date;
                        state.seq = seq;
                    }
                    UpdateState::Secondary { qts } => state.qts = qts,
                    UpdateState::Channel { id, pts } => {
                        match state.channels.iter_mut().find(|channel| channel.id == id) {
                            Some(channel) => channel.pts = pts,
                            None => state
                                .channels
                                .push(grammers_session::types::ChannelState { id, pts }),
                        }
                    }
                }
            }
            self.schedule_state_write();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_session::types::PeerAuth;

    fn logged_in_data() -> SessionData {
        let mut data = SessionData {
            home_dc: 2,
            ..SessionData::default()
        };
        if let Some(option) = data.dc_options.get_mut(&2) {
            option.auth_key = Some([7; 256]);
        }
        let me = PeerInfo::User {
            id: 100,
            auth: Some(PeerAuth::from_hash(5)),
            bot: Some(false),
            is_self: Some(true),
        };
        data.peer_infos.insert(PeerId::self_user(), me.clone());
        data.peer_infos.insert(me.id(), me);
        let someone = PeerInfo::User {
            id: 200,
            auth: Some(PeerAuth::from_hash(6)),
            bot: Some(false),
            is_self: None,
        };
        data.peer_infos.insert(someone.id(), someone);
        let channel = PeerInfo::Channel {
            id: 300,
            auth: Some(PeerAuth::from_hash(7)),
            kind: None,
        };
        data.peer_infos.insert(channel.id(), channel);
        data
    }

    #[test]
    fn the_persisted_form_keeps_keys_self_and_channels_but_not_other_users() {
        let persisted = PersistedSession::from_data(&logged_in_data());
        assert!(persisted.has_auth_key());
        assert_eq!(persisted.self_user_id(), Some(100));
        let ids: Vec<i64> = persisted
            .peers
            .iter()
            .map(|peer| match peer {
                PeerInfo::User { id, .. }
                | PeerInfo::Chat { id }
                | PeerInfo::Channel { id, .. } => *id,
            })
            .collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids.contains(&100) && ids.contains(&300));

        let back = PersistedSession::from_bytes(&persisted.to_bytes().unwrap())
            .unwrap()
            .into_data();
        assert_eq!(back.home_dc, 2);
        assert_eq!(back.dc_options[&2].auth_key, Some([7; 256]));
        assert!(back.peer_infos.contains_key(&PeerId::self_user()));
    }

    #[test]
    fn exported_strings_import_back_and_foreign_strings_are_refused() {
        let persisted = PersistedSession::from_data(&logged_in_data());
        let exported = persisted.export().unwrap();
        assert!(exported.starts_with("tgw1:"));
        let imported = PersistedSession::import(&exported).unwrap();
        assert_eq!(imported.self_user_id(), Some(100));
        assert!(imported.has_auth_key());
        assert!(PersistedSession::import("1BVtsOK4Bu...").is_err());
        assert!(PersistedSession::import("tgw1:!!!").is_err());
    }

    /// A Telethon string built byte by byte as Telethon's `StringSession.save` does
    /// (`struct.pack('>B4sH256s', dc_id, ip, port, key)`, base64url, version `1`).
    #[test]
    fn a_session_exported_for_telethon_reads_back_with_its_home_dc_address_and_key() {
        let mut data = SessionData {
            home_dc: 4,
            ..SessionData::default()
        };
        let option = data.dc_options.get_mut(&4).unwrap();
        option.ipv4 = std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 4444);
        option.auth_key = Some([9; 256]);
        let text = PersistedSession::from_data(&data).to_telethon().unwrap();
        assert!(text.starts_with('1'));
        let back = PersistedSession::from_telethon(&text).unwrap();
        assert_eq!(back.home_dc, 4);
        let home = back
            .dc_options
            .iter()
            .find(|option| option.id == 4)
            .unwrap();
        assert_eq!(home.ipv4.to_string(), "127.0.0.1:4444");
        assert_eq!(home.auth_key, Some([9; 256]));
        // A session without a key for its home DC has nothing to give Telethon.
        assert!(
            PersistedSession::from_data(&SessionData::default())
                .to_telethon()
                .is_err()
        );
    }

    #[test]
    fn telethon_string_sessions_import_with_their_dc_address_and_key() {
        let mut packed = vec![4_u8];
        packed.extend_from_slice(&[149, 154, 167, 91]);
        packed.extend_from_slice(&443_u16.to_be_bytes());
        packed.extend_from_slice(&[9_u8; 256]);
        let string = format!(
            "1{}",
            base64::engine::general_purpose::URL_SAFE.encode(&packed)
        );

        let session = PersistedSession::from_telethon(&string).unwrap();
        assert_eq!(session.home_dc, 4);
        assert!(session.has_auth_key());
        let option = session.dc_options.iter().find(|o| o.id == 4).unwrap();
        assert_eq!(option.ipv4.to_string(), "149.154.167.91:443");
        assert_eq!(option.auth_key, Some([9; 256]));

        for (input, expected) in [
            ("2abc", "version"),
            ("1!!!!", "base64url"),
            ("1AAAA", "bytes instead of"),
        ] {
            let error = PersistedSession::from_telethon(input)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{input}: {error}");
        }
        packed[0] = 9;
        let bad_dc = format!(
            "1{}",
            base64::engine::general_purpose::URL_SAFE.encode(&packed)
        );
        assert!(PersistedSession::from_telethon(&bad_dc).is_err());
    }
}
