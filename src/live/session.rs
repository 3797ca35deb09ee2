//! `GET /ws` (alias `/telegram/ws`): the handshake's checks, then one task per connection.
//!
//! Handshake answers: `user_id` missing or not a number: 400; wrong admin token, invalid or stale
//! init data, init data of another user: 401; a person without access (banned): 403; more than
//! `live.max_clients`: 503; a request that is not a WebSocket upgrade: 500 (seed 004).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use super::{
    ConnectError, Live, Outgoing,
    protocol::{self, Action, Audience, ClientMessage, Principal},
};
use crate::{app::AppState, http::error::ApiError};

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

impl From<ConnectError> for ApiError {
    fn from(error: ConnectError) -> ApiError {
        ApiError::new(error.status(), error.code(), error.to_string())
    }
}

/// The handshake: who is it, is there room, then the upgrade and the session's task.
pub async fn connect(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = &state.live;
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
        )
        .await
        .inspect_err(|error| {
            tracing::info!(reason = %error, status = error.status().as_u16(), "live connection refused");
        })?;
    let slot = live.reserve()?;
    let (response, session, stream) = actix_ws::handle(&request, body).map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "upgrade_failed",
            format!("the WebSocket upgrade failed: {error}"),
        )
    })?;
    let stream = stream
        .max_frame_size(MAX_FRAME_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_FRAME_BYTES);
    tracing::debug!(
        user_id = who.user_id,
        username = query.get("username").map(String::as_str).unwrap_or_default(),
        role = who.role.as_str(),
        "live client connected"
    );
    actix_web::rt::spawn(run(live.clone(), who, session, stream, slot));
    Ok(response)
}

/// One connection: frames from the hub out, client messages in, until either side goes.
async fn run(
    live: Live,
    who: Principal,
    mut session: Session,
    mut stream: AggregatedMessageStream,
    _slot: super::ClientSlot,
) {
    let mut outgoing = live.subscribe();
    let timeout = Duration::from_secs(live.config().client_timeout_seconds);
    let allow_all = live.config().allow_all_broadcast;
    let hello = protocol::hello_frame(&who, allow_all, live.announcer().is_some());
    if session.text(hello).await.is_err() {
        return;
    }
    if let Some(status) = live.latest_status()
        && session.text(status).await.is_err()
    {
        return;
    }
    let is_admin = who.admin_token || who.role == crate::bot::roles::Role::Admin;
    let mut last_heard = Instant::now();
    let close = loop {
        tokio::select! {
            incoming = stream.recv() => match incoming {
                Some(Ok(AggregatedMessage::Text(text))) => {
                    last_heard = Instant::now();
                    if on_text(&live, &who, &mut session, &text).await.is_err() {
                        return;
                    }
                }
                Some(Ok(AggregatedMessage::Binary(_))) => {
                    last_heard = Instant::now();
                    let error = protocol::error_frame("invalid_message", "send JSON text frames");
                    if session.text(error).await.is_err() {
                        return;
                    }
                }
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    last_heard = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(AggregatedMessage::Pong(_))) => last_heard = Instant::now(),
                Some(Ok(AggregatedMessage::Close(_))) | None => break None,
                Some(Err(error)) => {
                    tracing::debug!(%error, user_id = who.user_id, "live client broke the protocol");
                    break Some(CloseReason {
                        code: CloseCode::Protocol,
                        description: Some(error.to_string()),
                    });
                }
            },
            frame = outgoing.recv() => match frame {
                Ok(Outgoing::Frame(text, audience)) => {
                    if (audience == Audience::Everyone || is_admin) && session.text(text).await.is_err() {
                        return;
                    }
                }
                Ok(Outgoing::Heartbeat) => {
                    if last_heard.elapsed() > timeout {
                        break Some(CloseReason {
                            code: CloseCode::Away,
                            description: Some("no answer to pings".to_owned()),
                        });
                    }
                    if session.ping(b"").await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let error = protocol::error_frame(
                        "lagged",
                        &format!("{missed} updates were dropped: the connection is too slow"),
                    );
                    if session.text(error).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => break None,
            },
        }
    };
    let _ = session.close(close).await;
}

/// A client's text frame. `Err` only when the session is gone.
async fn on_text(
    live: &Live,
    who: &Principal,
    session: &mut Session,
    text: &str,
) -> Result<(), actix_ws::Closed> {
    let message = match protocol::parse(text) {
        Ok(message) => message,
        Err(error) => {
            return session
                .text(protocol::error_frame(
                    "invalid_message",
                    &error.to_string(),
                ))
                .await;
        }
    };
    let (action, needs) = match &message {
        ClientMessage::Ping => return session.text(protocol::pong_frame()).await,
        ClientMessage::Broadcast { pin: false, .. } => (Action::Broadcast, &[Action::Broadcast][..]),
        ClientMessage::Broadcast { pin: true, .. } => {
            (Action::Broadcast, &[Action::Broadcast, Action::Pin][..])
        }
        ClientMessage::Pin { .. } => (Action::Pin, &[Action::Pin][..]),
    };
    let refused = |code: &str, message: String| protocol::error_frame(code, &message);
    let current = match live.refresh(who).await {
        Ok(current) => current,
        Err(error) => {
            tracing::warn!(%error, "live: cannot read a client's role");
            return session
                .text(refused(
                    "unavailable",
                    "cannot check your permissions now; try again".to_owned(),
                ))
                .await;
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
        return session
            .text(refused(
                "permission_denied",
                format!(
                    "Permission denied: `{}` needs the admin role or the `{}` permission",
                    missing.permission(),
                    missing.permission()
                ),
            ))
            .await;
    }
    if live.announcer().is_none() {
        return session
            .text(refused(
                "not_configured",
                "broadcasting is off: the server needs `bot.token` and `live.broadcast_chat_id`"
                    .to_owned(),
            ))
            .await;
    }
    if action == Action::Broadcast
        && let Err(wait) = live.take_broadcast(who.user_id)
    {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        return session
            .text(
                json!({
                    "type": "error",
                    "code": "rate_limited",
                    "message": format!(
                        "Rate limited: at most {} broadcasts a minute; try again in {seconds} s",
                        live.config().broadcasts_per_minute
                    ),
                    "retry_after": seconds,
                })
                .to_string(),
            )
            .await;
    }
    // The Bot API call runs beside the session, which keeps serving frames meanwhile.
    let (live, mut reply_to, user_id) = (live.clone(), session.clone(), who.user_id);
    actix_web::rt::spawn(async move {
        let frame = perform(&live, message, user_id).await;
        let _ = reply_to.text(frame).await;
    });
    Ok(())
}

/// Sends or pins; the toast or error frame for the client.
async fn perform(live: &Live, message: ClientMessage, user_id: i64) -> String {
    let Some(announcer) = live.announcer() else {
        return protocol::error_frame("not_configured", "broadcasting is off");
    };
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
                tracing::info!(user_id, chat_id = announcer.chat_id, message_id, "live: message pinned");
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
