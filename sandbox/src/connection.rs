//! One task per TCP connection: framing, decryption, answering, pushing.
//!
//! A connection does not say who it is: the first packet's `auth_key_id` names the key (each
//! account has its own pre-shared key, plus one per login, and a key may be logged in to nobody
//! yet) and its plaintext names the client's session, which every message we send must echo. From
//! then on the connection is registered with the world under its key, so that pushed updates can
//! find it, until it closes. Whom the key is logged in as is looked up per request: a login
//! changes it mid-connection.

use std::sync::Arc;

use grammers_tl_types::{self as tl, Identifiable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use crate::crypto::{CryptoError, ServerKey};
use crate::dispatch::{self, Answer};
use crate::housekeeping::{self, SessionMemory};
use crate::sandbox::Shared;
use crate::transport::{ServerTransport, TransportError};
use crate::wire::{self, Outbox, Outgoing, WireError};
use crate::world::{ConnCommand, Pushed, unix_now};

/// The transport error Telegram sends for an auth key it does not know (a negative length in
/// place of a packet). grammers then drops the key and tries a key exchange, which the sandbox
/// cannot do, so the request fails instead of hanging.
const UNKNOWN_AUTH_KEY: i32 = -404;

/// The largest transport packet accepted, a little over grammers' own 1 MiB limit.
const MAX_PACKET: usize = 2 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("message: {0}")]
    Wire(#[from] WireError),
    #[error("packet too short to carry an auth key id")]
    ShortPacket,
    #[error("unknown auth key")]
    UnknownKey,
    #[error("auth key changed within one connection")]
    KeyChanged,
    #[error("the account is unreachable (Sandbox::set_unreachable)")]
    Unreachable,
}

/// What the connection knows once its first packet decrypted.
struct Peer {
    key: ServerKey,
    outbox: Option<Outbox>,
    /// The msg_ids the current session sent, to drop duplicates.
    memory: SessionMemory,
    registration: Option<u64>,
}

struct Connection {
    shared: Arc<Shared>,
    /// The DC whose listener accepted it.
    dc: i32,
    writer: OwnedWriteHalf,
    /// Chosen by the client's first bytes.
    transport: Option<ServerTransport>,
    peer: Option<Peer>,
    tx: mpsc::UnboundedSender<ConnCommand>,
}

/// Serves one client until it disconnects, misbehaves, or the control API closes it.
pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>, dc: i32) {
    let peer_addr = stream.peer_addr().ok();
    let (mut reader, writer) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut conn = Connection {
        shared,
        dc,
        writer,
        transport: None,
        peer: None,
        tx,
    };

    let mut buffer = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let outcome: Result<(), ConnError> = loop {
        tokio::select! {
            // Commands first: `drop_connections` queues the close before it returns, so no
            // request sent after that is answered on this connection, whatever the scheduling.
            biased;
            command = rx.recv() => match command {
                Some(ConnCommand::Push(pushed)) => {
                    if let Err(err) = conn.push(pushed).await {
                        break Err(err);
                    }
                }
                // `None` cannot happen while `conn.tx` lives; treat it like a close anyway.
                Some(ConnCommand::Close) | None => break Ok(()),
            },
            read = reader.read(&mut chunk) => match read {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    let fresh = &mut chunk[..n];
                    if let Some(transport) = &mut conn.transport {
                        transport.read(fresh);
                    }
                    buffer.extend_from_slice(fresh);
                    if let Err(err) = conn.on_bytes(&mut buffer).await {
                        break Err(err);
                    }
                }
                Err(err) => break Err(err.into()),
            },
        }
    };
    match &outcome {
        Ok(()) => tracing::debug!(?peer_addr, "sandbox: connection closed"),
        Err(err) => tracing::debug!(?peer_addr, %err, "sandbox: connection failed"),
    }
    conn.finish(rx);
}

impl Connection {
    /// Handles every complete transport packet in `buffer`, leaving a partial one in place.
    async fn on_bytes(&mut self, buffer: &mut Vec<u8>) -> Result<(), ConnError> {
        if self.transport.is_none() {
            let Some((transport, header)) = ServerTransport::detect(buffer)? else {
                return Ok(());
            };
            buffer.drain(..header);
            self.transport = Some(transport);
        }
        while let Some(transport) = &mut self.transport {
            let Some(unpacked) = transport.unpack(buffer)? else {
                if buffer.len() > MAX_PACKET {
                    return Err(TransportError::BadLength(buffer.len()).into());
                }
                return Ok(());
            };
            let packet = buffer[unpacked.payload].to_vec();
            buffer.drain(..unpacked.consumed);
            self.on_packet(&packet).await?;
        }
        Ok(())
    }

    async fn on_packet(&mut self, packet: &[u8]) -> Result<(), ConnError> {
        let key_id: [u8; 8] = packet
            .get(..8)
            .and_then(|id| id.try_into().ok())
            .ok_or(ConnError::ShortPacket)?;
        let peer = match &mut self.peer {
            Some(peer) if peer.key.id() == key_id => peer,
            Some(_) => return Err(ConnError::KeyChanged),
            None => {
                let known = {
                    let world = self.shared.world();
                    let record = world.keys.get(&key_id);
                    if record
                        .and_then(|record| record.account)
                        .is_some_and(|account| world.unreachable.contains(&account))
                    {
                        return Err(ConnError::Unreachable);
                    }
                    record.map(|record| record.key.clone())
                };
                let Some(key) = known else {
                    // Includes key id 0: a plain message starting a key exchange.
                    if let Some(transport) = &mut self.transport {
                        let frame = transport.error(UNKNOWN_AUTH_KEY);
                        self.writer.write_all(&frame).await?;
                    }
                    return Err(ConnError::UnknownKey);
                };
                self.peer.insert(Peer {
                    key,
                    outbox: None,
                    memory: SessionMemory::new(),
                    registration: None,
                })
            }
        };

        let plaintext = peer.key.decrypt_from_client(packet)?;
        let envelope = wire::parse_plaintext(&plaintext)?;
        let session_changed = peer
            .outbox
            .as_ref()
            .is_none_or(|outbox| outbox.session_id() != envelope.session_id);
        if session_changed {
            // grammers picks a random session id per connection and panics if an answer names
            // another one, so everything we send echoes the latest id it used.
            peer.outbox = Some(Outbox::new(envelope.session_id));
            peer.memory = SessionMemory::new();
        }
        if peer.registration.is_none() {
            peer.registration = self
                .shared
                .world()
                .register_connection(key_id, self.tx.clone());
        }

        let (msg_id, seq_no) = (envelope.message.msg_id, envelope.message.seq_no);
        let now = i64::from(unix_now());
        if let Some(code) = housekeeping::msg_id_error(msg_id, now) {
            let notification = wire::bad_msg_notification(msg_id, seq_no, code);
            return self.send(&notification, Outgoing::Response).await;
        }
        let salt = housekeeping::salt(key_id, now);
        if !housekeeping::salt_is_valid(key_id, now, envelope.salt) {
            let notification = wire::bad_server_salt(msg_id, seq_no, salt);
            return self.send(&notification, Outgoing::Response).await;
        }
        if !peer.memory.first_sight(msg_id) {
            return Ok(());
        }
        let new_session = self
            .shared
            .world()
            .note_session(key_id, envelope.session_id);
        if new_session {
            let created = wire::new_session_created(msg_id, rand::random(), salt);
            self.send(&created, Outgoing::Push).await?;
        }

        for message in wire::flatten(envelope.message)? {
            let first_sight = self
                .peer
                .as_mut()
                .is_some_and(|peer| peer.memory.first_sight(message.msg_id));
            // A container's messages are new with it; a repeat of one sent alone is dropped.
            if first_sight || message.msg_id == msg_id {
                self.on_message(key_id, message).await?;
            }
        }
        Ok(())
    }

    async fn on_message(
        &mut self,
        key_id: [u8; 8],
        message: wire::Message,
    ) -> Result<(), ConnError> {
        match message.constructor() {
            // Acknowledgements need no answer; the sandbox never resends.
            tl::types::MsgsAck::CONSTRUCTOR_ID => Ok(()),
            // Service requests answered by a top-level message, not an `rpc_result`.
            tl::functions::GetFutureSalts::CONSTRUCTOR_ID => {
                let request = wire::parse_call::<tl::functions::GetFutureSalts>(&message.body)
                    .map_err(WireError::from)?;
                let now = unix_now();
                let salts = housekeeping::future_salts(key_id, i64::from(now), request.num);
                self.send(
                    &wire::future_salts(message.msg_id, now, &salts),
                    Outgoing::Response,
                )
                .await
            }
            tl::functions::DestroySession::CONSTRUCTOR_ID => {
                let request = wire::parse_call::<tl::functions::DestroySession>(&message.body)
                    .map_err(WireError::from)?;
                let existed = self
                    .shared
                    .world()
                    .forget_session(key_id, request.session_id);
                self.send(
                    &wire::destroy_session_result(request.session_id, existed),
                    Outgoing::Response,
                )
                .await
            }
            tl::functions::Ping::CONSTRUCTOR_ID => {
                let ping = wire::parse_call::<tl::functions::Ping>(&message.body)
                    .map_err(WireError::from)?;
                self.send(
                    &wire::pong(message.msg_id, ping.ping_id),
                    Outgoing::Response,
                )
                .await
            }
            // grammers sends this every minute as its keepalive. The "disconnect after a delay
            // without pings" half is not enforced: tests must not depend on wall-clock waits.
            tl::functions::PingDelayDisconnect::CONSTRUCTOR_ID => {
                let ping = wire::parse_call::<tl::functions::PingDelayDisconnect>(&message.body)
                    .map_err(WireError::from)?;
                self.send(
                    &wire::pong(message.msg_id, ping.ping_id),
                    Outgoing::Response,
                )
                .await
            }
            _ => {
                let caller = dispatch::Caller {
                    key: key_id,
                    connection: self.peer.as_ref().and_then(|peer| peer.registration),
                    dc: self.dc,
                };
                let answer = dispatch::call(&mut self.shared.world(), caller, &message.body);
                let result = match answer {
                    Answer::Result(bytes) => bytes,
                    Answer::Error { code, message } => wire::rpc_error(code, &message),
                };
                let body = wire::rpc_result(message.msg_id, &result);
                self.send(&body, Outgoing::Response).await
            }
        }
    }

    /// Sends updates as a plain encrypted message holding a serialized `Updates` (not in an
    /// `rpc_result`), which grammers hands to its update machinery.
    async fn push(&mut self, pushed: Pushed) -> Result<(), ConnError> {
        let updates = match pushed {
            Pushed::Short(update) => tl::enums::Updates::UpdateShort(tl::types::UpdateShort {
                update: *update,
                date: crate::world::unix_now(),
            }),
            Pushed::Updates { updates, users } => {
                // The channels the updates name, as Telegram always sends them (grammers caches
                // them, and needs their access hash to ask getChannelDifference later).
                let chats = match &self.peer {
                    Some(peer) => {
                        let world = self.shared.world();
                        world
                            .account_of_key(peer.key.id())
                            .map(|viewer| crate::channels::chats_for(&world, viewer, &updates))
                            .unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                tl::enums::Updates::Updates(tl::types::Updates {
                    updates,
                    users,
                    chats,
                    date: crate::world::unix_now(),
                    // seq 0 marks updates outside the common sequence, so grammers applies them
                    // without checking for a gap.
                    seq: 0,
                })
            }
        };
        self.send(&tl::Serializable::to_bytes(&updates), Outgoing::Push)
            .await
    }

    /// Encrypts, frames and writes one message.
    async fn send(&mut self, body: &[u8], kind: Outgoing) -> Result<(), ConnError> {
        let Some(peer) = &mut self.peer else {
            return Ok(());
        };
        let Some(outbox) = &mut peer.outbox else {
            // Only registered connections (which have an outbox) are pushed to.
            return Ok(());
        };
        let salt = housekeeping::salt(peer.key.id(), i64::from(unix_now()));
        let plaintext = outbox.seal(body, kind, salt);
        let packet = peer.key.encrypt_for_client(&plaintext);
        let Some(transport) = &mut self.transport else {
            return Ok(());
        };
        let frame = transport.pack(&packet);
        self.writer.write_all(&frame).await?;
        Ok(())
    }

    /// Unregisters the connection and hands the pushes it did not send to another connection of
    /// its key. When there is none they are lost, as on a real network drop, except that the
    /// channels they were about are marked as missed, so that the next `updates.getDifference`
    /// names them (pts-carrying updates of the common box are in its log anyway).
    fn finish(self, mut rx: mpsc::UnboundedReceiver<ConnCommand>) {
        let Some(Peer {
            key,
            registration: Some(id),
            ..
        }) = self.peer
        else {
            return;
        };
        let mut world = self.shared.world();
        world.unregister_connection(key.id(), id);
        rx.close();
        let account = world.account_of_key(key.id());
        while let Ok(command) = rx.try_recv() {
            let ConnCommand::Push(pushed) = command else {
                continue;
            };
            let Err(Pushed::Updates { updates, .. }) = world.push_to_key(key.id(), pushed) else {
                continue;
            };
            if let Some(account) = account {
                for update in &updates {
                    crate::channels::undelivered(&mut world, account, update);
                }
            }
        }
    }
}
