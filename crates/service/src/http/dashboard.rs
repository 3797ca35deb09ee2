//! The web dashboard at `/` (also the Telegram Mini App): three small files built into the
//! binary (no build step), the live WebSocket routes, and the board the page starts from.
//!
//! The page calls the `/api` endpoints with the admin token (desktop) or with
//! `Authorization: tma <initData>` (Mini App, admins only) and opens `/ws`.

use actix_web::{
    HttpRequest, HttpResponse, get,
    http::{StatusCode, header},
    post, web,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorBody};
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
/// Seed 003's login and main pages, one page over the `/telegram` endpoints.
const TELEGRAM_HTML: &str = include_str!("../../assets/dashboard/telegram.html");
const TELEGRAM_JS: &str = include_str!("../../assets/dashboard/telegram.js");

/// Users on the board at most (the page is a live overview, not a report).
const BOARD_LIMIT: usize = 1000;

/// Scripts only from here and Telegram's WebApp script; data only from here; framed only by
/// Telegram's clients (web.telegram.org shows Mini Apps in an iframe) or the page itself.
const CSP: &str = "default-src 'self'; script-src 'self' https://telegram.org; \
                   style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   frame-ancestors 'self' https://web.telegram.org https://*.telegram.org; \
                   base-uri 'none'; form-action 'none'";

/// The page, its assets and the WebSocket (no token needed to load them: the page asks for it).
pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(index)
        .service(dashboard)
        .service(app_js)
        .service(style_css)
        .service(telegram_page)
        .service(telegram_js)
        .service(live)
        .service(live_for_mini_app);
}

/// Under `/api` (behind the token): what the board starts from.
pub fn api_routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(board).service(live_ticket);
}

/// A single-use ticket for `/ws`.
#[derive(Serialize, ToSchema)]
struct LiveTicket {
    /// Send it as `/ws?ticket=...`: it opens one admin connection.
    ticket: String,
    /// Wall-clock time after which it opens nothing (30 s after it was issued).
    expires_at: DateTime<Utc>,
}

/// A ticket that opens one admin connection to `/ws` within 30 seconds, so that the admin
/// token stays out of the WebSocket's URL (and out of proxies' access logs).
#[utoipa::path(
    operation_id = "live_ticket",
    tag = "live",
    responses((status = 200, body = LiveTicket))
)]
#[post("/live/ticket")]
#[tracing::instrument(name = "dashboard.live_ticket", skip_all)]
async fn live_ticket(state: web::Data<AppState>) -> HttpResponse {
    let (ticket, expires_at) = state.live.issue_ticket();
    HttpResponse::Ok().json(LiveTicket { ticket, expires_at })
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}

/// The dashboard (also the Telegram Mini App).
#[utoipa::path(
    operation_id = "dashboard_root",
    tag = "dashboard",
    security(()),
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
#[get("/")]
#[tracing::instrument(name = "dashboard.index", skip_all)]
async fn index() -> HttpResponse {
    html_page(INDEX_HTML)
}

/// The dashboard, under its own name.
#[utoipa::path(
    operation_id = "dashboard",
    tag = "dashboard",
    security(()),
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
#[get("/dashboard")]
#[tracing::instrument(name = "dashboard.dashboard", skip_all)]
async fn dashboard() -> HttpResponse {
    html_page(INDEX_HTML)
}

/// Seed 003's pages: log an account in (phone, code, 2FA password, or QR code), then its session,
/// chats and a chat's messages.
#[utoipa::path(
    operation_id = "telegram_page",
    tag = "dashboard",
    security(()),
    responses((status = 200, description = "The page", content_type = "text/html", body = String))
)]
#[get("/telegram")]
async fn telegram_page() -> HttpResponse {
    html_page(TELEGRAM_HTML)
}

#[utoipa::path(
    operation_id = "telegram_page_script",
    tag = "dashboard",
    security(()),
    responses((status = 200, description = "The Telegram page's script", content_type = "text/javascript", body = String))
)]
#[get("/dashboard/telegram.js")]
async fn telegram_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", TELEGRAM_JS)
}

/// An HTML page with the dashboard's security headers.
fn html_page(body: &'static str) -> HttpResponse {
    let mut response = asset("text/html; charset=utf-8", body);
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

#[utoipa::path(
    operation_id = "dashboard_script",
    tag = "dashboard",
    security(()),
    responses((status = 200, description = "The page's script", content_type = "text/javascript", body = String))
)]
#[get("/dashboard/app.js")]
#[tracing::instrument(name = "dashboard.app_js", skip_all)]
async fn app_js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

#[utoipa::path(
    operation_id = "dashboard_style",
    tag = "dashboard",
    security(()),
    responses((status = 200, description = "The page's style sheet", content_type = "text/css", body = String))
)]
#[get("/dashboard/style.css")]
#[tracing::instrument(name = "dashboard.style_css", skip_all)]
async fn style_css() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// One tracked user on the board.
#[derive(Serialize, ToSchema)]
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

/// The board.
#[derive(Serialize, ToSchema)]
struct Board {
    /// At most 1000.
    items: Vec<BoardItem>,
    service_time: DateTime<Utc>,
    /// WebSocket clients connected now.
    live_clients: usize,
}

/// `GET /api/dashboard/board`: every tracked user with where they stand now, online first.
#[utoipa::path(
    operation_id = "dashboard_board",
    tag = "dashboard",
    responses((status = 200, body = Board))
)]
#[get("/dashboard/board")]
#[tracing::instrument(name = "dashboard.board", skip_all)]
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
    Ok(HttpResponse::Ok().json(Board {
        items,
        service_time: state.clock.now(),
        live_clients: state.live.clients(),
    }))
}

/// How a live client says who it is (read by [`session::connect`], which takes the admin token
/// from `Authorization: Bearer` too).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // the parameters' documentation: `session::connect` reads the query itself
struct LiveQuery {
    /// The admin token (prefer the `Authorization` header or a `ticket`: a URL lands in access
    /// logs).
    token: Option<String>,
    /// A single-use ticket from `POST /api/live/ticket`, instead of the token.
    ticket: Option<String>,
    /// A Telegram Mini App's initData (signed by the bot).
    init_data: Option<String>,
    /// The Telegram user id the client acts as.
    user_id: Option<String>,
    /// Shown in the service's log.
    username: Option<String>,
}

/// `GET /ws`: the live WebSocket's handshake ([`session::connect`]); a refusal is a JSON error.
/// A failed upgrade (no WebSocket handshake headers) is a 500, as seed 004 specifies: the one
/// exception to "a client's mistake is never a 5xx".
#[utoipa::path(
    operation_id = "live",
    tag = "live",
    security(()),
    params(LiveQuery),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol (see README, \"Live: WebSocket and dashboard\")"),
        (status = 500, description = "The WebSocket upgrade failed (seed 004)", body = ErrorBody),
    )
)]
#[get("/ws")]
#[tracing::instrument(name = "dashboard.live", skip_all)]
async fn live(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Ok(session::connect(&state.live, request, body).await?)
}

/// `GET /ws` under the name the Mini App uses.
#[utoipa::path(
    operation_id = "live_for_mini_app",
    tag = "live",
    security(()),
    params(LiveQuery),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 500, description = "The WebSocket upgrade failed (seed 004)", body = ErrorBody),
    )
)]
#[get("/telegram/ws")]
#[tracing::instrument(name = "dashboard.live_for_mini_app", skip_all)]
async fn live_for_mini_app(
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
