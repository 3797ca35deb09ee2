//! The web dashboard at `/` (also the Telegram Mini App): three small files built into the
//! binary (no build step), the live WebSocket routes, and the board the page starts from.
//!
//! The page calls the `/api` endpoints with the admin token (desktop) or with
//! `Authorization: tma <initData>` (Mini App, admins only) and opens `/ws`.

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::ApiError;
use crate::{
    live::{
        ConnectError,
        session::{self, Refused},
    },
    state::AppState,
};
use tgwatch_core::presence::StatusKind;
use tgwatch_store as storage;

const INDEX_HTML: &str = include_str!("../../assets/dashboard/index.html");
const APP_JS: &str = include_str!("../../assets/dashboard/app.js");
const STYLE_CSS: &str = include_str!("../../assets/dashboard/style.css");

/// Users on the board at most (the page is a live overview, not a report).
const BOARD_LIMIT: usize = 1000;

/// Scripts only from here and Telegram's WebApp script; data only from here; framed only by
/// Telegram's clients (web.telegram.org shows Mini Apps in an iframe) or the page itself.
const CSP: &str = "default-src 'self'; script-src 'self' https://telegram.org; \
                   style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   frame-ancestors 'self' https://web.telegram.org https://*.telegram.org; \
                   base-uri 'none'; form-action 'none'";

/// The page, its assets and the WebSocket (no token needed to load them: the page asks for it).
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(index))
        .route("/dashboard", web::get().to(index))
        .route("/dashboard/app.js", web::get().to(app_js))
        .route("/dashboard/style.css", web::get().to(style_css))
        .route("/ws", web::get().to(live))
        .route("/telegram/ws", web::get().to(live));
}

/// Under `/api` (behind the token): what the board starts from.
pub fn api_routes(config: &mut web::ServiceConfig) {
    config.route("/dashboard/board", web::get().to(board));
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

async fn index() -> HttpResponse {
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    if let Ok(value) = header::HeaderValue::from_str(CSP) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn app_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// One tracked user on the board.
#[derive(Serialize)]
struct BoardItem {
    id: Uuid,
    username: Option<String>,
    first_name: Option<String>,
    telegram_user_id: Option<i64>,
    /// The newest observation's status (`online`, `offline`, `recently`, ...), if any.
    status: Option<StatusKind>,
    /// Seen online by the newest observation.
    online: bool,
    /// A session is open (the gap rule has not closed it yet).
    session_open: bool,
    online_since: Option<DateTime<Utc>>,
    /// The last moment the user was known to be online.
    last_seen: Option<DateTime<Utc>>,
    observed_at: Option<DateTime<Utc>>,
}

/// `GET /api/dashboard/board`: every tracked user with where they stand now, online first.
async fn board(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let users = storage::tracked_users::active(&state.db).await?;
    let now = state.clock.now();
    let mut items = Vec::with_capacity(users.len().min(BOARD_LIMIT));
    for user in users.into_iter().take(BOARD_LIMIT) {
        let newest = storage::observations::newest_of(&state.db, user.id).await?;
        let session = storage::bot::latest_session_of(&state.db, user.id).await?;
        let online = newest
            .as_ref()
            .is_some_and(|row| row.status == StatusKind::Online);
        let session_open = session.as_ref().is_some_and(|s| s.ended_at.is_none());
        let last_seen = [
            session.as_ref().map(|s| s.last_online_at),
            newest.as_ref().and_then(|row| row.was_online_at),
            newest
                .as_ref()
                .filter(|row| row.status == StatusKind::Online)
                .map(|row| row.observed_at),
        ]
        .into_iter()
        .flatten()
        .max()
        // An online status counts until its `expires`, which lies ahead: seen means by now.
        .map(|seen| seen.min(now));
        items.push(BoardItem {
            id: user.id,
            username: user.username,
            first_name: user.first_name,
            telegram_user_id: user.telegram_user_id,
            status: newest.as_ref().map(|row| row.status),
            online,
            session_open,
            online_since: session
                .as_ref()
                .filter(|s| s.ended_at.is_none())
                .map(|s| s.started_at),
            last_seen,
            observed_at: newest.as_ref().map(|row| row.observed_at),
        });
    }
    items.sort_by(|a, b| {
        (b.online, b.session_open, b.last_seen).cmp(&(a.online, a.session_open, a.last_seen))
    });
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "items": items,
        "service_time": state.clock.now(),
        "live_clients": state.live.clients(),
    })))
}

/// `GET /ws`: the live WebSocket's handshake ([`session::connect`]); a refusal is a JSON error.
async fn live(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(session::connect(&state.live, request, body).await?)
}

impl From<ConnectError> for ApiError {
    fn from(error: ConnectError) -> ApiError {
        ApiError::new(error.status(), error.code(), error.to_string())
    }
}

impl From<Refused> for ApiError {
    fn from(refused: Refused) -> ApiError {
        match refused {
            Refused::Connect(error) => error.into(),
            Refused::UpgradeFailed(_) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "upgrade_failed",
                refused.to_string(),
            ),
        }
    }
}
