//! `GET /ws` (alias `/telegram/ws`): the handshake's checks, then the connection.
//!
//! Handshake answers: `user_id` missing or not a number: 400; wrong admin token, invalid or stale
//! init data, init data of another user: 401; a person without access (banned): 403; more than
//! `live.max_clients`: 503; a request that is not a WebSocket upgrade: 500 (seed 004).
//!
//! A connection is the response body of the upgrade ([`Connection`], a stream the HTTP dispatcher
//! polls): it yields the hub's frames, already encoded, and reads and answers the client's frames
//! in the same poll. No task and no channel per connection; a client's broadcast or pin runs in a
//! task of its own while the Bot API answers, and its reply comes back through the connection's
//! small queue.

use std::{
    cell::{Cell, RefCell},
    collections::{HashMap, VecDeque},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{self, CloseCode, CloseReason, Frame, Item, Message};
use actix_web::{
    HttpRequest, HttpResponse,
    body::{BodyStream, MessageBody},
    dev::Payload,
    http::StatusCode,
    web::{self, Bytes, BytesMut},
};
use futures_util::Stream;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError};

use super::{
    ClientSlot, ConnectError, Live, Outgoing,
    protocol::{self, Action, Audience, ClientMessage, Principal},
};
use tgwatch_core::roles::Role;

/// The largest message a client may send (a broadcast is at most 4096 characters).
const MAX_FRAME_BYTES: usize = 64 * 1024;

impl ConnectError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConnectError::MissingUserId | ConnectError::BadUserId => StatusCode::BAD_REQUEST,
            ConnectError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ConnectError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConnectError::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
            ConnectError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ConnectError::MissingUserId | ConnectError::BadUserId => "invalid_query",
            ConnectError::Unauthorized(_) => "unauthorized",
            ConnectError::Forbidden(_) => "forbidden",
            ConnectError::Full(_) => "too_many_clients",
            ConnectError::Storage(_) => "database_unavailable",
        }
    }
}

/// Why the handshake refused a connection.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Who the client is, or whether there is room for it.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The request was no WebSocket upgrade actix-http could answer.
    #[error("the WebSocket upgrade failed: {0}")]
    UpgradeFailed(String),
}

/// `text` as one WebSocket text frame from the server (unmasked: the same bytes for every
/// client).
pub fn text_frame(text: String) -> Bytes {
    encode(Message::Text(text.into()))
}

fn encode(message: Message) -> Bytes {
    let mut buffer = BytesMut::new();
    // The server codec only fails on frames it cannot size, which ours never are.
    match ws::Codec::new().encode(message, &mut buffer) {
        Ok(()) => buffer.freeze(),
        Err(error) => {
            tracing::error!(%error, "cannot encode a WebSocket frame");
            Bytes::new()
        }
    }
}

/// The handshake: who is it, is there room, then the upgrade with the connection as its body.
/// The HTTP route (in the `http` module) renders a refusal as the API's JSON error.
pub async fn connect(
    live: &Live,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, Refused> {
    let query = web::Query::<HashMap<String, String>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let bearer = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let token = bearer.or(query.get("token").map(String::as_str));
    let who = live
        .authenticate(
            query.get("user_id").map(String::as_str),
            query.get("init_data").map(String::as_str),
            token,
            query.get("ticket").map(String::as_str),
        )
        .await
        .inspect_err(|error| {
            tracing::info!(reason = %error, status = error.status().as_u16(), "live connection refused");
        })?;
    let upgrade_failed = |error: &dyn std::fmt::Display| Refused::UpgradeFailed(error.to_string());
    let mut response = ws::handshake(request.head()).map_err(|e| upgrade_failed(&e))?;
    let slot = live.reserve(!who.admin_token)?;
    tracing::debug!(
        user_id = who.user_id,
        username = query
            .get("username")
            .map(String::as_str)
            .unwrap_or_default(),
        role = who.role.as_str(),
        "live client connected"
    );
    let connection = Connection::new(live.clone(), who, body.into_inner(), slot);
    let response = response
        .message_body(BodyStream::new(connection).boxed())
        .map_err(|e| upgrade_failed(&e))?;
    Ok(response.into())
}

/// Frames for one connection besides the hub's (hello, pong, toasts, errors), and the waker of
/// its dispatcher. Shared with the connection's action tasks, on the same worker thread.
#[derive(Default)]
struct Replies {
    frames: RefCell<VecDeque<Bytes>>,
    waker: Cell<Option<Waker>>,
}

impl Replies {
    fn push(&self, frame: Bytes) {
        self.frames.borrow_mut().push_back(frame);
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }

    fn pop(&self) -> Option<Bytes> {
        self.frames.borrow_mut().pop_front()
    }
}

/// Frames a connection may fall behind by before it loses some.
const LOCAL_CAPACITY: usize = 256;

/// The hub's frames on one worker thread. The hub's broadcast channel has one receiver per
/// worker (a relay task), not per connection: a tick wakes two relays across threads, and each
/// relay wakes its own connections with local wakes, without locks.
struct LocalHub {
    /// The newest frames; `frames[0]` has sequence number `first`.
    frames: RefCell<VecDeque<Outgoing>>,
    first: Cell<u64>,
    /// Bumped by every frame; a connection registers its waker once per epoch.
    epoch: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

/// A frame at a sequence number, or how many were lost before the oldest kept one.
enum Slot {
    Frame(Outgoing),
    NotYet,
    Missed(u64),
}

impl LocalHub {
    fn next(&self) -> u64 {
        self.first.get() + self.frames.borrow().len() as u64
    }

    fn push(&self, frame: Outgoing) {
        {
            let mut frames = self.frames.borrow_mut();
            frames.push_back(frame);
            if frames.len() > LOCAL_CAPACITY {
                frames.pop_front();
                self.first.set(self.first.get() + 1);
            }
        }
        self.epoch.set(self.epoch.get() + 1);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }

    fn get(&self, seq: u64) -> Slot {
        let first = self.first.get();
        if seq < first {
            return Slot::Missed(first - seq);
        }
        let frames = self.frames.borrow();
        match usize::try_from(seq - first)
            .ok()
            .and_then(|i| frames.get(i))
        {
            Some(frame) => Slot::Frame(frame.clone()),
            None => Slot::NotYet,
        }
    }

    fn register(&self, waker: &Waker) {
        self.waiters.borrow_mut().push(waker.clone());
    }
}

thread_local! {
    /// This worker's relay of each hub (one per service; tests run several in a process).
    static LOCAL_HUBS: RefCell<Vec<(usize, Rc<LocalHub>)>> = const { RefCell::new(Vec::new()) };
}

/// The local hub of `live` on this worker thread, started (with its relay task) on first use.
fn local_hub(live: &Live) -> Rc<LocalHub> {
    let key = live.key();
    LOCAL_HUBS.with(|hubs| {
        if let Some((_, hub)) = hubs.borrow().iter().find(|(k, _)| *k == key) {
            return Rc::clone(hub);
        }
        let hub = Rc::new(LocalHub {
            frames: RefCell::new(VecDeque::with_capacity(LOCAL_CAPACITY + 1)),
            first: Cell::new(0),
            epoch: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
        });
        actix_web::rt::spawn(relay(Rc::clone(&hub), live.subscribe()));
        hubs.borrow_mut().push((key, Rc::clone(&hub)));
        hub
    })
}

/// Hands the hub's frames to this worker's connections.
async fn relay(hub: Rc<LocalHub>, mut frames: broadcast::Receiver<Outgoing>) {
    loop {
        match frames.recv().await {
            Ok(frame) => hub.push(frame),
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "a live relay fell behind the hub");
                hub.push(Outgoing::Frame(
                    text_frame(protocol::error_frame(
                        "lagged",
                        &format!("{missed} updates were dropped: the server is overloaded"),
                    )),
                    Audience::Everyone,
                ));
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// The close of every connection when the service stops.
fn going_away() -> CloseReason {
    CloseReason {
        code: CloseCode::Away,
        description: Some("the service is stopping".to_owned()),
    }
}

enum Phase {
    Open,
    /// Send the close frame, then end.
    Closing(Option<CloseReason>),
    Done,
}

/// One WebSocket connection, as the response body of its upgrade.
struct Connection {
    live: Live,
    who: Rc<Principal>,
    sees_alerts: bool,
    timeout: Duration,
    payload: Payload,
    incoming: BytesMut,
    codec: ws::Codec,
    /// A fragmented message being put together: whether it is text, and its bytes so far.
    fragments: Option<(bool, BytesMut)>,
    hub: Rc<LocalHub>,
    /// The sequence number of the next hub frame for this client.
    seq: u64,
    /// The hub epoch this connection last registered its waker in.
    registered: u64,
    replies: Rc<Replies>,
    last_heard: Instant,
    phase: Phase,
    _slot: ClientSlot,
}

impl Connection {
    fn new(live: Live, who: Principal, payload: Payload, slot: ClientSlot) -> Connection {
        let replies = Rc::new(Replies::default());
        let hub = local_hub(&live);
        let live_going_away = live.is_going_away();
        let config = live.config();
        replies.push(text_frame(protocol::hello_frame(
            &who,
            config.allow_all_broadcast,
            live.announcer().is_some(),
        )));
        if let Some(status) = live.latest_status() {
            replies.push(status);
        }
        for live_out in live.current_live_outs() {
            replies.push(live_out);
        }
        Connection {
            timeout: Duration::from_secs(config.client_timeout_seconds),
            sees_alerts: who.admin_token || who.role == Role::Admin,
            seq: hub.next(),
            registered: u64::MAX,
            hub,
            live,
            who: Rc::new(who),
            payload,
            incoming: BytesMut::new(),
            codec: ws::Codec::new().max_size(MAX_FRAME_BYTES),
            fragments: None,
            replies,
            last_heard: Instant::now(),
            phase: if live_going_away {
                Phase::Closing(Some(going_away()))
            } else {
                Phase::Open
            },
            _slot: slot,
        }
    }

    fn close(&mut self, code: CloseCode, description: impl Into<String>) {
        if matches!(self.phase, Phase::Open) {
            self.phase = Phase::Closing(Some(CloseReason {
                code,
                description: Some(description.into()),
            }));
        }
    }

    /// Reads what the client sent and handles every whole frame.
    fn read(&mut self, cx: &mut Context<'_>) {
        loop {
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => self.incoming.extend_from_slice(&bytes),
                Poll::Ready(Some(Err(error))) => {
                    tracing::debug!(%error, "live client read failed");
                    self.phase = Phase::Done;
                    return;
                }
                // The client closed its side.
                Poll::Ready(None) => {
                    self.phase = Phase::Done;
                    return;
                }
                Poll::Pending => break,
            }
        }
        while matches!(self.phase, Phase::Open) {
            match self.codec.decode(&mut self.incoming) {
                Ok(Some(frame)) => self.on_frame(frame),
                Ok(None) => break,
                Err(error) => {
                    let code = match error {
                        ws::ProtocolError::Overflow => CloseCode::Size,
                        _ => CloseCode::Protocol,
                    };
                    self.close(code, error.to_string());
                }
            }
        }
        // Nothing half-read: give the buffer back (client messages are rare and small).
        if self.incoming.is_empty() && self.incoming.capacity() > 0 {
            self.incoming = BytesMut::new();
        }
    }

    fn on_frame(&mut self, frame: Frame) {
        self.last_heard = Instant::now();
        match frame {
            Frame::Text(bytes) => self.on_message(true, bytes),
            Frame::Binary(bytes) => self.on_message(false, bytes),
            Frame::Ping(bytes) => self.replies.push(encode(Message::Pong(bytes))),
            Frame::Pong(_) => {}
            Frame::Close(_) => self.phase = Phase::Closing(None),
            Frame::Continuation(item) => {
                let (start, last, bytes) = match item {
                    Item::FirstText(bytes) => (Some(true), false, bytes),
                    Item::FirstBinary(bytes) => (Some(false), false, bytes),
                    Item::Continue(bytes) => (None, false, bytes),
                    Item::Last(bytes) => (None, true, bytes),
                };
                if let Some(text) = start {
                    self.fragments = Some((text, BytesMut::new()));
                }
                let Some((_, collected)) = self.fragments.as_mut() else {
                    return self.close(CloseCode::Protocol, "a continuation without a start");
                };
                if collected.len() + bytes.len() > MAX_FRAME_BYTES {
                    return self.close(CloseCode::Size, "the message is too large");
                }
                collected.extend_from_slice(&bytes);
                if last && let Some((text, collected)) = self.fragments.take() {
                    self.on_message(text, collected.freeze());
                }
            }
        }
    }

    fn on_message(&mut self, text: bool, bytes: Bytes) {
        let reply = |code: &str, message: &str| text_frame(protocol::error_frame(code, message));
        if !text {
            return self
                .replies
                .push(reply("invalid_message", "send JSON text frames"));
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            return self.close(CloseCode::Invalid, "text frames must be UTF-8");
        };
        let message = match protocol::parse(text) {
            Ok(message) => message,
            Err(error) => {
                return self
                    .replies
                    .push(reply("invalid_message", &error.to_string()));
            }
        };
        if message == ClientMessage::Ping {
            return self
                .replies
                .push(text_frame(protocol::pong_frame().to_owned()));
        }
        // Permissions (read again now), the rate limit and the Bot API: in a task of its own.
        let (live, who, replies) = (
            self.live.clone(),
            Rc::clone(&self.who),
            Rc::clone(&self.replies),
        );
        actix_web::rt::spawn(async move {
            let frame = act(&live, &who, message).await;
            replies.push(text_frame(frame));
        });
    }

    /// The next frame from the hub this client should get, if one is ready; `Ready(None)` when
    /// the connection is to close.
    fn poll_hub(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            match self.hub.get(self.seq) {
                Slot::Frame(Outgoing::Frame(frame, audience)) => {
                    self.seq += 1;
                    if audience == Audience::Everyone || self.sees_alerts {
                        return Poll::Ready(Some(frame));
                    }
                }
                Slot::Frame(Outgoing::GoingAway) => {
                    self.seq += 1;
                    if matches!(self.phase, Phase::Open) {
                        self.phase = Phase::Closing(Some(going_away()));
                    }
                    return Poll::Ready(None);
                }
                Slot::Frame(Outgoing::Heartbeat) => {
                    self.seq += 1;
                    if self.last_heard.elapsed() > self.timeout {
                        self.close(CloseCode::Away, "no answer to pings");
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(encode(Message::Ping(Bytes::new()))));
                }
                Slot::Missed(missed) => {
                    self.seq += missed;
                    return Poll::Ready(Some(text_frame(protocol::error_frame(
                        "lagged",
                        &format!("{missed} updates were dropped: the connection is too slow"),
                    ))));
                }
                Slot::NotYet => {
                    let epoch = self.hub.epoch.get();
                    if self.registered != epoch {
                        self.hub.register(cx.waker());
                        self.registered = epoch;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Stream for Connection {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.replies.waker.set(Some(cx.waker().clone()));
        if matches!(this.phase, Phase::Open) {
            this.read(cx);
        }
        if let Some(frame) = this.replies.pop() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if matches!(this.phase, Phase::Open)
            && let Poll::Ready(Some(frame)) = this.poll_hub(cx)
        {
            return Poll::Ready(Some(Ok(frame)));
        }
        match std::mem::replace(&mut this.phase, Phase::Done) {
            Phase::Open => {
                this.phase = Phase::Open;
                Poll::Pending
            }
            Phase::Closing(reason) => Poll::Ready(Some(Ok(encode(Message::Close(reason))))),
            Phase::Done => Poll::Ready(None),
        }
    }
}

/// A client's action: checked, limited, done through the Bot API; the toast or error frame.
async fn act(live: &Live, who: &Principal, message: ClientMessage) -> String {
    let refused = |code: &str, message: &str| protocol::error_frame(code, message);
    let needs: &[Action] = match &message {
        ClientMessage::Ping => return protocol::pong_frame().to_owned(),
        ClientMessage::Broadcast { pin: false, .. } => &[Action::Broadcast],
        ClientMessage::Broadcast { pin: true, .. } => &[Action::Broadcast, Action::Pin],
        ClientMessage::Pin { .. } => &[Action::Pin],
    };
    let current = match live.refresh(who).await {
        Ok(current) => current,
        Err(error) => {
            tracing::warn!(%error, "live: cannot read a client's role");
            return refused(
                "unavailable",
                "cannot check your permissions now; try again",
            );
        }
    };
    let allow_all = live.config().allow_all_broadcast;
    if let Some(missing) = needs
        .iter()
        .find(|needed| !protocol::may(&current, **needed, allow_all))
    {
        tracing::info!(
            user_id = who.user_id,
            role = current.role.as_str(),
            action = missing.permission(),
            "live: permission denied"
        );
        return refused(
            "permission_denied",
            &format!(
                "Permission denied: `{0}` needs the admin role or the `{0}` permission",
                missing.permission()
            ),
        );
    }
    let Some(announcer) = live.announcer() else {
        return refused(
            "not_configured",
            "broadcasting is off: the server needs `bot.token` and `live.broadcast_chat_id`",
        );
    };
    if matches!(message, ClientMessage::Broadcast { .. })
        && let Err(wait) = live.take_broadcast(who.user_id)
    {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        return json!({
            "type": "error",
            "code": "rate_limited",
            "message": format!(
                "Rate limited: at most {} broadcasts a minute; try again in {seconds} s",
                live.config().broadcasts_per_minute
            ),
            "retry_after": seconds,
        })
        .to_string();
    }
    let user_id = who.user_id;
    let failed = |error: super::AnnounceError| {
        tracing::warn!(%error, user_id, "live: a broadcast failed");
        protocol::error_frame("telegram_error", &error.to_string())
    };
    match message {
        ClientMessage::Broadcast {
            text,
            thread_id,
            pin,
        } => {
            let sent = match announcer.send(&text, thread_id).await {
                Ok(sent) => sent,
                Err(error) => return failed(error),
            };
            tracing::info!(
                user_id,
                chat_id = announcer.chat_id,
                message_id = sent.message_id,
                thread_id = sent.thread_id,
                pin,
                "live: broadcast sent"
            );
            let details = json!({
                "chat_id": announcer.chat_id,
                "message_id": sent.message_id,
                "thread_id": sent.thread_id,
            });
            if !pin {
                return protocol::toast_frame("Message sent!", details);
            }
            match announcer.pin(sent.message_id).await {
                Ok(()) => protocol::toast_frame("Message sent and pinned!", details),
                Err(error) => failed(error),
            }
        }
        ClientMessage::Pin {
            message_id,
            thread_id,
        } => match announcer.pin(message_id).await {
            Ok(()) => {
                tracing::info!(
                    user_id,
                    chat_id = announcer.chat_id,
                    message_id,
                    "live: message pinned"
                );
                protocol::toast_frame(
                    "Message pinned!",
                    json!({
                        "chat_id": announcer.chat_id,
                        "message_id": message_id,
                        "thread_id": thread_id.or(announcer.default_thread_id),
                    }),
                )
            }
            Err(error) => failed(error),
        },
        ClientMessage::Ping => protocol::pong_frame().to_owned(),
    }
}
