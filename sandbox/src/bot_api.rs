//! A fake Telegram Bot API: an HTTP/1 server on 127.0.0.1 that the REAL teloxide talks to
//! (`Bot::new(token).set_api_url(url)`), answering with the Bot API's own JSON.
//!
//! Tests play the people: [`BotApi::send_text`] queues an incoming message that the next
//! `getUpdates` returns (long polling: the call waits up to its `timeout` for one), and
//! [`BotApi::sent`] lists what the bot sent, in order. Faults are injected per method:
//! [`BotApi::hang_next`] keeps a call waiting, then refuses it unsent;
//! [`BotApi::fail_next`] answers 400 with a JSON error, [`BotApi::rate_limit_next`] answers 429
//! with `parameters.retry_after`. Errors are always 4xx: teloxide sleeps 10 s after any 5xx.
//!
//! Methods: `getMe`, `getUpdates`, `sendMessage`, `sendPhoto` (JSON or multipart, the photo's
//! bytes kept), `pinChatMessage`, `setMyCommands`, `getMyCommands`, `deleteWebhook`,
//! `getWebhookInfo`. Others answer 404 like the real API. A wrong token answers 401.

use std::{
    collections::{HashMap, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use tokio::{net::TcpListener, sync::Notify};

use crate::SandboxError;

/// The bot's own user id and username in the fake.
pub const BOT_ID: i64 = 7_000_000_001;
pub const BOT_USERNAME: &str = "tgwatch_test_bot";

/// The longest getUpdates wait honoured, whatever the bot asks (keeps a stuck test short).
const MAX_POLL: Duration = Duration::from_secs(30);

/// Someone writing to the bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub id: i64,
    pub first_name: String,
    pub username: Option<String>,
}

impl Person {
    /// `User <id>` with the username `user<id>`.
    pub fn numbered(id: i64) -> Person {
        Person {
            id,
            first_name: format!("User {id}"),
            username: Some(format!("user{id}")),
        }
    }
}

/// One call of a sending method that the fake accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct Sent {
    /// `sendMessage`, `sendPhoto`, `pinChatMessage`.
    pub method: String,
    pub chat_id: i64,
    /// The message's text, or the photo's caption.
    pub text: Option<String>,
    /// The photo file's bytes (`sendPhoto` uploads).
    pub photo: Option<Vec<u8>>,
    pub message_thread_id: Option<i64>,
    pub reply_markup: Option<Value>,
    /// The id the fake gave the message (for `pinChatMessage`, the pinned message's id).
    pub message_id: i64,
}

/// One request the fake answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// In the Bot API's spelling (`sendMessage`), however the client wrote it.
    pub method: String,
    /// The HTTP status of the answer.
    pub status: u16,
    pub at: std::time::Instant,
}

#[derive(Clone, Debug)]
struct Fault {
    code: u16,
    description: String,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct State {
    next_update_id: i64,
    next_message_id: i64,
    /// Updates not yet confirmed by an offset, oldest first.
    updates: VecDeque<Value>,
    sent: Vec<Sent>,
    calls: HashMap<String, usize>,
    log: Vec<Call>,
    /// Faults to answer, per method (lowercase).
    faults: HashMap<String, VecDeque<Fault>>,
    /// Calls to keep waiting this long, then refuse unsent, per method (lowercase).
    hangs: HashMap<String, VecDeque<std::time::Duration>>,
    commands: Vec<(String, String)>,
}

struct Shared {
    token: String,
    state: Mutex<State>,
    /// Wakes long polls when an update arrives.
    updates: Notify,
    /// Wakes tests waiting for the bot to send something (or set its commands).
    sent: Notify,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Handle on a running fake Bot API. Cheap to clone; the server runs until the runtime ends.
#[derive(Clone)]
pub struct BotApi {
    shared: Arc<Shared>,
    address: SocketAddr,
}

impl BotApi {
    /// Starts the server on 127.0.0.1 and a free port, for a bot with this token.
    pub async fn start(token: &str) -> Result<BotApi, SandboxError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(SandboxError::Bind)?;
        let address = listener.local_addr().map_err(SandboxError::Bind)?;
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            state: Mutex::new(State {
                next_update_id: 1,
                next_message_id: 1,
                ..State::default()
            }),
            updates: Notify::new(),
            sent: Notify::new(),
        });
        let server = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = Arc::clone(&server);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(answer(&shared, request).await) }
                    });
                    if let Err(error) = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(%error, "bot api connection ended");
                    }
                });
            }
        });
        Ok(BotApi { shared, address })
    }

    /// The base URL to give teloxide (`set_api_url`).
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// Someone sends `text` in `chat_id` (their own id for a private chat, negative for a group;
    /// below -1_000_000_000_000 a supergroup).
    pub fn send_text(&self, from_user_id: i64, chat_id: i64, text: &str) {
        self.send_message(&Person::numbered(from_user_id), chat_id, None, text);
    }

    /// Someone sends `text`, in a forum topic when `thread_id` is given.
    pub fn send_message(&self, from: &Person, chat_id: i64, thread_id: Option<i64>, text: &str) {
        let mut state = self.shared.state();
        let message_id = state.next_message_id;
        state.next_message_id += 1;
        let mut message = json!({
            "message_id": message_id,
            "date": unix_now(),
            "chat": chat(chat_id, Some(from)),
            "from": person(from),
            "text": text,
        });
        if text.starts_with('/') {
            let length = text
                .split_whitespace()
                .next()
                .map_or(0, |command| command.encode_utf16().count());
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
        }
        if let Some(thread) = thread_id {
            message["message_thread_id"] = json!(thread);
            message["is_topic_message"] = json!(true);
        }
        let update_id = state.next_update_id;
        state.next_update_id += 1;
        state
            .updates
            .push_back(json!({"update_id": update_id, "message": message}));
        drop(state);
        self.shared.updates.notify_waiters();
    }

    /// Everything the bot sent so far, oldest first.
    pub fn sent(&self) -> Vec<Sent> {
        self.shared.state().sent.clone()
    }

    /// What was sent to one chat.
    pub fn sent_to(&self, chat_id: i64) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|sent| sent.chat_id == chat_id)
            .collect()
    }

    /// Waits (real time) until `done` holds for the list of what was sent, and returns it; or
    /// gives up after `timeout` and returns the list as it is.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Sent]) -> bool) -> Vec<Sent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.sent.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let sent = self.sent();
            if done(&sent) {
                return sent;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.sent();
            }
        }
    }

    /// How many times a method was called (failed calls included).
    pub fn calls(&self, method: &str) -> usize {
        self.shared
            .state()
            .calls
            .get(&method.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    /// Every request answered so far, in order, with its status.
    pub fn log(&self) -> Vec<Call> {
        self.shared.state().log.clone()
    }

    /// Updates the bot has not confirmed yet (by asking for a higher offset).
    pub fn pending_updates(&self) -> usize {
        self.shared.state().updates.len()
    }

    /// The command menu set with `setMyCommands`: (command, description).
    pub fn commands(&self) -> Vec<(String, String)> {
        self.shared.state().commands.clone()
    }

    /// The next `n` calls of `method` fail with 400 `Bad Request: injected failure`.
    pub fn fail_next(&self, method: &str, n: usize) {
        self.fail_next_with(method, n, 400, "Bad Request: injected failure");
    }

    /// The next `n` calls of `method` fail with this code (4xx) and description, e.g. 403
    /// `Forbidden: bot was blocked by the user`.
    pub fn fail_next_with(&self, method: &str, n: usize, code: u16, description: &str) {
        let fault = Fault {
            code,
            description: description.to_owned(),
            retry_after: None,
        };
        self.push_faults(method, std::iter::repeat_n(fault, n));
    }

    /// The next call of `method` answers 429 with `parameters.retry_after` (seconds).
    pub fn rate_limit_next(&self, method: &str, retry_after: u64) {
        let fault = Fault {
            code: 429,
            description: format!("Too Many Requests: retry after {retry_after}"),
            retry_after: Some(retry_after),
        };
        self.push_faults(method, [fault]);
    }

    /// The next call of `method` gets no answer for `wait`, then 400 and is
    /// not carried out: a request cut off on its way (the client gives up or dies meanwhile).
    pub fn hang_next(&self, method: &str, wait: std::time::Duration) {
        self.shared
            .state()
            .hangs
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back(wait);
    }

    fn push_faults(&self, method: &str, faults: impl IntoIterator<Item = Fault>) {
        self.shared
            .state()
            .faults
            .entry(method.to_ascii_lowercase())
            .or_default()
            .extend(faults);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn person(person: &Person) -> Value {
    let mut user = json!({"id": person.id, "is_bot": false, "first_name": person.first_name});
    if let Some(username) = &person.username {
        user["username"] = json!(username);
    }
    user
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "tgwatch", "username": BOT_USERNAME})
}

/// The `Chat` object of a chat id, as the Bot API shapes it by kind.
fn chat(chat_id: i64, private_with: Option<&Person>) -> Value {
    if chat_id > 0 {
        let mut chat = json!({"id": chat_id, "type": "private"});
        if let Some(person) = private_with.filter(|p| p.id == chat_id) {
            chat["first_name"] = json!(person.first_name);
            if let Some(username) = &person.username {
                chat["username"] = json!(username);
            }
        }
        chat
    } else if chat_id <= -1_000_000_000_000 {
        json!({"id": chat_id, "type": "supergroup", "title": format!("Group {chat_id}"), "is_forum": true})
    } else {
        json!({"id": chat_id, "type": "group", "title": format!("Group {chat_id}")})
    }
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn ok(result: Value) -> Response<Full<Bytes>> {
    reply(StatusCode::OK, json!({"ok": true, "result": result}))
}

fn error(code: u16, description: &str, retry_after: Option<u64>) -> Response<Full<Bytes>> {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(seconds) = retry_after {
        body["parameters"] = json!({"retry_after": seconds});
    }
    reply(
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        body,
    )
}

/// A request's parameters (JSON body, multipart form, or none) and the uploaded file, if any.
struct Params {
    fields: Map<String, Value>,
    file: Option<Vec<u8>>,
}

impl Params {
    fn i64(&self, name: &str) -> Option<i64> {
        match self.fields.get(name)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    fn string(&self, name: &str) -> Option<String> {
        match self.fields.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    fn json(&self, name: &str) -> Option<Value> {
        match self.fields.get(name)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            other => Some(other.clone()),
        }
    }
}

/// Answers a request and logs the call with the status it got.
async fn answer(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    // Method names are case-insensitive (teloxide sends `SendMessage`): log the Bot API's own
    // spelling, `sendMessage`.
    let sent_as = request.uri().path().rsplit('/').next().unwrap_or_default();
    let mut letters = sent_as.chars();
    let method: String = letters
        .next()
        .map(|first| first.to_ascii_lowercase())
        .into_iter()
        .chain(letters)
        .collect();
    let response = route(shared, request).await;
    shared.state().log.push(Call {
        method,
        status: response.status().as_u16(),
        at: std::time::Instant::now(),
    });
    response
}

async fn route(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let (Some(bot), Some(method)) = (segments.next(), segments.next()) else {
        return error(404, "Not Found", None);
    };
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return error(401, "Unauthorized", None);
    }
    let method = method.to_ascii_lowercase();
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return error(400, "Bad Request: unreadable body", None),
    };
    let Some(params) = parse_params(&content_type, &body) else {
        return error(400, "Bad Request: can't parse the request", None);
    };
    let hang = {
        let mut state = shared.state();
        *state.calls.entry(method.clone()).or_default() += 1;
        if let Some(fault) = state.faults.get_mut(&method).and_then(VecDeque::pop_front) {
            return error(fault.code, &fault.description, fault.retry_after);
        }
        state.hangs.get_mut(&method).and_then(VecDeque::pop_front)
    };
    if let Some(wait) = hang {
        tokio::time::sleep(wait).await;
        return error(400, "Bad Request: the call was cut off", None);
    }
    match method.as_str() {
        "getme" => ok(json!({
            "id": BOT_ID,
            "is_bot": true,
            "first_name": "tgwatch",
            "username": BOT_USERNAME,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
            "can_connect_to_business": false,
            "has_main_web_app": false,
        })),
        "getupdates" => get_updates(shared, &params).await,
        "sendmessage" | "sendphoto" => send(shared, &method, params),
        "pinchatmessage" => pin(shared, &params),
        "setmycommands" => {
            let commands = params
                .json("commands")
                .and_then(|c| c.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    let field = |name: &str| c[name].as_str().unwrap_or_default().to_owned();
                    (field("command"), field("description"))
                })
                .collect();
            shared.state().commands = commands;
            shared.sent.notify_waiters();
            ok(json!(true))
        }
        "getmycommands" => {
            let commands: Vec<Value> = shared
                .state()
                .commands
                .iter()
                .map(|(command, description)| json!({"command": command, "description": description}))
                .collect();
            ok(json!(commands))
        }
        "deletewebhook" => ok(json!(true)),
        "getwebhookinfo" => {
            ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}))
        }
        _ => error(404, "Not Found: method not found", None),
    }
}

async fn get_updates(shared: &Shared, params: &Params) -> Response<Full<Bytes>> {
    let offset = params.i64("offset").unwrap_or(0);
    let limit = params.i64("limit").unwrap_or(100).clamp(1, 100) as usize;
    let timeout =
        Duration::from_secs(params.i64("timeout").unwrap_or(0).max(0) as u64).min(MAX_POLL);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = shared.updates.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut state = shared.state();
            // An offset confirms every update before it: they are gone for good.
            while state
                .updates
                .front()
                .is_some_and(|u| u["update_id"].as_i64().unwrap_or(0) < offset)
            {
                state.updates.pop_front();
            }
            if !state.updates.is_empty() {
                let batch: Vec<Value> = state.updates.iter().take(limit).cloned().collect();
                return ok(json!(batch));
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn send(shared: &Shared, method: &str, params: Params) -> Response<Full<Bytes>> {
    let Some(chat_id) = params.i64("chat_id") else {
        return error(400, "Bad Request: chat not found", None);
    };
    let photo = method == "sendphoto";
    let text = if photo {
        params.string("caption")
    } else {
        match params.string("text") {
            Some(text) if !text.is_empty() => Some(text),
            _ => return error(400, "Bad Request: message text is empty", None),
        }
    };
    if text.as_ref().is_some_and(|t| t.chars().count() > 4096) {
        return error(400, "Bad Request: message is too long", None);
    }
    if photo && params.file.is_none() {
        return error(400, "Bad Request: there is no photo in the request", None);
    }
    let thread = params.i64("message_thread_id");
    let reply_markup = params.json("reply_markup");
    let mut state = shared.state();
    let message_id = state.next_message_id;
    state.next_message_id += 1;
    let mut message = json!({
        "message_id": message_id,
        "date": unix_now(),
        "chat": chat(chat_id, None),
        "from": bot_user(),
    });
    if let Some(thread) = thread {
        message["message_thread_id"] = json!(thread);
        message["is_topic_message"] = json!(true);
    }
    if let Some(markup) = &reply_markup {
        message["reply_markup"] = markup.clone();
    }
    if photo {
        let (width, height) = params.file.as_deref().and_then(png_size).unwrap_or((1, 1));
        let size = params.file.as_ref().map_or(0, Vec::len);
        message["photo"] = json!([{
            "file_id": format!("photo-{message_id}"),
            "file_unique_id": format!("u{message_id}"),
            "width": width,
            "height": height,
            "file_size": size,
        }]);
        if let Some(caption) = &text {
            message["caption"] = json!(caption);
        }
    } else {
        message["text"] = json!(text);
    }
    state.sent.push(Sent {
        method: if photo { "sendPhoto" } else { "sendMessage" }.to_owned(),
        chat_id,
        text,
        photo: if photo { params.file } else { None },
        message_thread_id: thread,
        reply_markup,
        message_id,
    });
    drop(state);
    shared.sent.notify_waiters();
    ok(message)
}

fn pin(shared: &Shared, params: &Params) -> Response<Full<Bytes>> {
    let (Some(chat_id), Some(message_id)) = (params.i64("chat_id"), params.i64("message_id"))
    else {
        return error(400, "Bad Request: message to pin not found", None);
    };
    let mut state = shared.state();
    let exists = state
        .sent
        .iter()
        .any(|s| s.chat_id == chat_id && s.message_id == message_id);
    if !exists {
        return error(400, "Bad Request: message to pin not found", None);
    }
    state.sent.push(Sent {
        method: "pinChatMessage".to_owned(),
        chat_id,
        text: None,
        photo: None,
        message_thread_id: None,
        reply_markup: None,
        message_id,
    });
    drop(state);
    shared.sent.notify_waiters();
    ok(json!(true))
}

/// Width and height from a PNG's IHDR chunk.
pub fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    let height = u32::from_be_bytes([png[20], png[21], png[22], png[23]]);
    Some((width, height))
}

fn parse_params(content_type: &str, body: &[u8]) -> Option<Params> {
    if body.is_empty() {
        return Some(Params {
            fields: Map::new(),
            file: None,
        });
    }
    if content_type.starts_with("multipart/form-data") {
        let boundary = content_type
            .split(';')
            .find_map(|part| part.trim().strip_prefix("boundary="))?
            .trim_matches('"');
        return parse_multipart(boundary, body);
    }
    match serde_json::from_slice(body).ok()? {
        Value::Object(fields) => Some(Params { fields, file: None }),
        _ => None,
    }
}

/// A small multipart/form-data reader: each part's name, and its body as a field (JSON when it
/// parses, as teloxide sends numbers and objects) or, with a filename, as the uploaded file.
fn parse_multipart(boundary: &str, body: &[u8]) -> Option<Params> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut fields = Map::new();
    let mut file = None;
    for part in split(body, &delimiter).into_iter().skip(1) {
        if part.starts_with(b"--") {
            break;
        }
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let split_at = find(part, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&part[..split_at]).to_string();
        let content = &part[split_at + 4..];
        let disposition = headers
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with("content-disposition"))?;
        let attribute = |name: &str| {
            disposition.split(';').find_map(|item| {
                item.trim()
                    .strip_prefix(&format!("{name}="))
                    .map(|v| v.trim_matches('"').to_owned())
            })
        };
        let name = attribute("name")?;
        if attribute("filename").is_some() {
            file = Some(content.to_vec());
            fields.insert(name, Value::String("attach".to_owned()));
        } else {
            let text = String::from_utf8_lossy(content).to_string();
            let value = match serde_json::from_str::<Value>(&text) {
                Ok(
                    value
                    @ (Value::Number(_) | Value::Object(_) | Value::Array(_) | Value::Bool(_)),
                ) => value,
                _ => Value::String(text),
            };
            fields.insert(name, value);
        }
    }
    Some(Params { fields, file })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn split<'a>(mut body: &'a [u8], delimiter: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    while let Some(at) = find(body, delimiter) {
        parts.push(&body[..at]);
        body = &body[at + delimiter.len()..];
    }
    parts.push(body);
    parts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TOKEN: &str = "123456:test-token";

    /// One HTTP/1.1 request by hand, as the fake is meant to be spoken to by any client.
    async fn call(
        api: &BotApi,
        token: &str,
        method: &str,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let mut stream = tokio::net::TcpStream::connect(api.address).await.unwrap();
        let head = format!(
            "POST /bot{token}/{method} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let text = String::from_utf8(response).unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        (status, serde_json::from_str(body).unwrap())
    }

    async fn json_call(api: &BotApi, method: &str, body: Value) -> (u16, Value) {
        call(
            api,
            TOKEN,
            method,
            "application/json",
            body.to_string().as_bytes(),
        )
        .await
    }

    #[tokio::test]
    async fn answers_like_the_bot_api() {
        let api = BotApi::start(TOKEN).await.unwrap();
        let (status, me) = json_call(&api, "getMe", json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(me["result"]["username"], BOT_USERNAME);
        let (status, body) = call(&api, "999:wrong", "getMe", "application/json", b"{}").await;
        assert_eq!((status, body["error_code"].as_i64()), (401, Some(401)));
        let (status, _) = json_call(&api, "sendDice", json!({})).await;
        assert_eq!(status, 404);

        let (status, sent) = json_call(
            &api,
            "sendMessage",
            json!({"chat_id": 42, "text": "hi", "message_thread_id": 7}),
        )
        .await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(sent["result"]["chat"]["type"], "private");
        let id = sent["result"]["message_id"].as_i64().unwrap();
        let (status, _) = json_call(
            &api,
            "pinChatMessage",
            json!({"chat_id": 42, "message_id": id}),
        )
        .await;
        assert_eq!(status, 200);
        let (status, _) = json_call(
            &api,
            "pinChatMessage",
            json!({"chat_id": 42, "message_id": 999}),
        )
        .await;
        assert_eq!(status, 400);
        let sent = api.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].text.as_deref(), Some("hi"));
        assert_eq!(sent[0].message_thread_id, Some(7));
        assert_eq!(sent[1].method, "pinChatMessage");

        let (_, _) = json_call(
            &api,
            "setMyCommands",
            json!({"commands": [{"command": "start", "description": "register"}]}),
        )
        .await;
        assert_eq!(
            api.commands(),
            vec![("start".to_owned(), "register".to_owned())]
        );
    }

    #[tokio::test]
    async fn photos_arrive_as_multipart_with_their_bytes() {
        let api = BotApi::start(TOKEN).await.unwrap();
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&640_u32.to_be_bytes());
        png.extend_from_slice(&480_u32.to_be_bytes());
        png.extend_from_slice(b"rest\r\n--not-the-boundary");
        let mut body = Vec::new();
        for (name, value) in [("chat_id", "-100"), ("caption", "a chart")] {
            body.extend_from_slice(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"stats.png\"\r\nContent-Type: image/png\r\n\r\n",
        );
        body.extend_from_slice(&png);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        let (status, sent) = call(
            &api,
            TOKEN,
            "sendPhoto",
            "multipart/form-data; boundary=XyZ",
            &body,
        )
        .await;
        assert_eq!(status, 200, "{sent}");
        assert_eq!(sent["result"]["photo"][0]["width"], 640);
        assert_eq!(sent["result"]["chat"]["type"], "group");
        let sent = api.sent();
        assert_eq!(sent[0].photo.as_deref(), Some(png.as_slice()));
        assert_eq!(sent[0].text.as_deref(), Some("a chart"));
        assert_eq!(sent[0].chat_id, -100);
    }

    #[tokio::test]
    async fn long_polling_waits_for_an_update_and_offsets_confirm() {
        let api = BotApi::start(TOKEN).await.unwrap();
        let (_, empty) = json_call(&api, "getUpdates", json!({"timeout": 0})).await;
        assert_eq!(empty["result"], json!([]));
        let poller = {
            let api = api.clone();
            tokio::spawn(async move { json_call(&api, "getUpdates", json!({"timeout": 5})).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        api.send_text(1001, 1001, "/start");
        let (_, updates) = tokio::time::timeout(Duration::from_secs(2), poller)
            .await
            .expect("the long poll returns when the update arrives")
            .unwrap();
        let update = &updates["result"][0];
        assert_eq!(update["message"]["text"], "/start");
        assert_eq!(update["message"]["entities"][0]["length"], 6);
        assert_eq!(update["message"]["from"]["id"], 1001);
        let next = update["update_id"].as_i64().unwrap() + 1;
        let (_, after) = json_call(&api, "getUpdates", json!({"offset": next, "timeout": 0})).await;
        assert_eq!(after["result"], json!([]));
        assert_eq!(api.pending_updates(), 0);
    }

    #[tokio::test]
    async fn injected_failures_and_rate_limits() {
        let api = BotApi::start(TOKEN).await.unwrap();
        api.fail_next("sendMessage", 2);
        api.rate_limit_next("sendmessage", 3);
        for _ in 0..2 {
            let (status, body) =
                json_call(&api, "sendMessage", json!({"chat_id": 1, "text": "x"})).await;
            assert_eq!(status, 400);
            assert_eq!(body["description"], "Bad Request: injected failure");
        }
        let (status, body) =
            json_call(&api, "sendMessage", json!({"chat_id": 1, "text": "x"})).await;
        assert_eq!(status, 429);
        assert_eq!(body["parameters"]["retry_after"], 3);
        let (status, _) = json_call(&api, "sendMessage", json!({"chat_id": 1, "text": "x"})).await;
        assert_eq!(status, 200);
        assert_eq!(api.calls("sendMessage"), 4);
        assert_eq!(api.sent().len(), 1);
    }
}
