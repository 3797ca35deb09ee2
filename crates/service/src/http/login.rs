//! Logging an account in (seed 003): phone code, 2FA password, QR code; the session's state and
//! reset; import of an existing session. No endpoint ever returns a secret.
//!
//! `tgwatch login` drives these same endpoints from a terminal.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use qrcode::{QrCode, render::svg};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
};
use crate::state::AppState;
use tgwatch_store::{
    self as storage,
    entities::auth_attempts,
    page::{Order, Page},
};
use tgwatch_telegram::{
    TelegramError,
    login::LoginError,
    logins::{LoginStatus, Logins, LoginsError},
    stored_session::PersistedSession,
};

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(send_code)
        .service(submit_code)
        .service(submit_password)
        .service(qr)
        .service(qr_svg)
        .service(login_status)
        .service(session_info)
        .service(reset)
        .service(import)
        .service(list_auth_attempts);
}

/// The route of `tgwatch demo` only ([`super::Switches::demo_phone`]).
pub fn demo_routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(qr_demo_scan);
}

pub(super) fn logins(state: &AppState) -> Result<&Arc<Logins>, ApiError> {
    state.logins.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "logins_unavailable",
            "this service runs a scripted Telegram (telegram.scenario); logins need MTProto",
        )
    })
}

/// The client's IP address (the TCP peer; a proxy in front makes every client one address,
/// which only makes the per-address limit stricter).
fn client_addr(request: &HttpRequest) -> Option<String> {
    request.peer_addr().map(|addr| addr.ip().to_string())
}

/// Telegram's login codes are 5 or 6 digits; some room for longer ones.
const MAX_CODE_DIGITS: usize = 10;
/// Far beyond any 2FA password a person types.
const MAX_PASSWORD_CHARS: usize = 1024;
/// my.telegram.org's api_hash is 32 hexadecimal characters; some room for other forms.
const MAX_API_HASH_CHARS: usize = 64;

pub(super) fn check_api_hash(api_hash: Option<&str>) -> Result<(), ApiError> {
    if api_hash.is_some_and(|hash| hash.trim().is_empty() || hash.len() > MAX_API_HASH_CHARS) {
        return Err(ApiError::bad_request(
            "invalid_api_hash",
            format!(
                "`api_hash` must be 1 to {MAX_API_HASH_CHARS} characters (from my.telegram.org)"
            ),
        ));
    }
    Ok(())
}

/// The 409 every login route documents.
const LOGIN_CONFLICT: &str = "The service has no MTProto logins (scripted Telegram), or the step does not fit where the login stands";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    /// The account's phone when absent.
    phone: Option<String>,
    /// `telegram.api_hash` when absent.
    api_hash: Option<String>,
}

/// Asks Telegram to send a login code to the phone (the body may be left out).
#[utoipa::path(
    operation_id = "login_send_code",
    tag = "login",
    request_body(content = Option<PhoneBody>, description = "Optional"),
    responses(
        (status = 200, body = LoginStatus),
        (status = 404, body = ErrorBody),
        (status = 409, description = LOGIN_CONFLICT, body = ErrorBody),
        (status = 422, description = "Telegram refused the phone or the api_id", body = ErrorBody),
    )
)]
#[post("/accounts/{id}/login/phone")]
#[tracing::instrument(name = "login.send_code", skip_all, fields(account_id = %id))]
async fn send_code(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: Option<params::Json<PhoneBody>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.map(params::Json::into_inner).unwrap_or(PhoneBody {
        phone: None,
        api_hash: None,
    });
    let status = send_code_to(&state, id.into_inner(), body.phone, body.api_hash).await?;
    Ok(HttpResponse::Ok().json(status))
}

/// Checks `phone` and `api_hash`, then asks Telegram to send the account a login code.
pub(super) async fn send_code_to(
    state: &AppState,
    account_id: Uuid,
    phone: Option<String>,
    api_hash: Option<String>,
) -> Result<LoginStatus, ApiError> {
    if let Some(phone) = &phone {
        crate::tracking::validate_phone(phone)?;
    }
    check_api_hash(api_hash.as_deref())?;
    Ok(logins(state)?
        .send_code(account_id, phone, api_hash)
        .await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    /// The digits Telegram sent.
    code: String,
}

/// The code Telegram sent; the answer says whether a 2FA password is needed next.
#[utoipa::path(
    operation_id = "login_submit_code",
    tag = "login",
    request_body = CodeBody,
    responses(
        (status = 200, body = LoginStatus),
        (status = 404, body = ErrorBody),
        (status = 409, description = LOGIN_CONFLICT, body = ErrorBody),
        (status = 410, description = "The code expired", body = ErrorBody),
        (status = 422, description = "A wrong code", body = ErrorBody),
        (status = 429, description = "Too many wrong tries (`details.retry_after`)", body = ErrorBody),
    )
)]
#[post("/accounts/{id}/login/code")]
#[tracing::instrument(name = "login.submit_code", skip_all, fields(account_id = %id))]
async fn submit_code(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<Uuid>,
    body: params::Json<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    let status = submit_code_of(&state, &request, id.into_inner(), &body.into_inner().code).await?;
    Ok(HttpResponse::Ok().json(status))
}

/// Checks that `code` is digits, then tries it on the account's login in progress.
pub(super) async fn submit_code_of(
    state: &AppState,
    request: &HttpRequest,
    account_id: Uuid,
    code: &str,
) -> Result<LoginStatus, ApiError> {
    let digits = code.trim();
    if !(1..=MAX_CODE_DIGITS).contains(&digits.len()) || !digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err(ApiError::bad_request(
            "invalid_code",
            format!("`code` must be the digits Telegram sent (at most {MAX_CODE_DIGITS})"),
        ));
    }
    Ok(logins(state)?
        .submit_code(account_id, code, client_addr(request).as_deref())
        .await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    /// The 2FA password (1 to 1024 characters).
    password: String,
}

#[utoipa::path(
    operation_id = "login_submit_password",
    tag = "login",
    request_body = PasswordBody,
    responses(
        (status = 200, body = LoginStatus),
        (status = 404, body = ErrorBody),
        (status = 409, description = LOGIN_CONFLICT, body = ErrorBody),
        (status = 422, description = "A wrong password", body = ErrorBody),
        (status = 429, description = "Too many wrong tries (`details.retry_after`)", body = ErrorBody),
    )
)]
#[post("/accounts/{id}/login/password")]
#[tracing::instrument(name = "login.submit_password", skip_all, fields(account_id = %id))]
async fn submit_password(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<Uuid>,
    body: params::Json<PasswordBody>,
) -> Result<HttpResponse, ApiError> {
    let password = body.into_inner().password;
    let status = submit_password_of(&state, &request, id.into_inner(), &password).await?;
    Ok(HttpResponse::Ok().json(status))
}

/// Checks the password's length, then tries it on the account's login waiting for it.
pub(super) async fn submit_password_of(
    state: &AppState,
    request: &HttpRequest,
    account_id: Uuid,
    password: &str,
) -> Result<LoginStatus, ApiError> {
    if password.is_empty() || password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            "invalid_password",
            format!("`password` must be 1 to {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(logins(state)?
        .submit_password(account_id, password, client_addr(request).as_deref())
        .await?)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct QrQuery {
    /// `telegram.api_hash` when absent.
    api_hash: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(super) struct QrView {
    url: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    /// The QR code of `url`, as an SVG document.
    svg: String,
}

pub(super) async fn current_qr(
    state: &AppState,
    request: &HttpRequest,
    id: Uuid,
    api_hash: Option<String>,
) -> Result<QrView, ApiError> {
    check_api_hash(api_hash.as_deref())?;
    let token = logins(state)?
        .qr(id, api_hash, client_addr(request).as_deref())
        .await?;
    let svg = QrCode::new(token.url.as_bytes())
        .map_err(|error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "qr_failed",
                format!("cannot draw the QR code: {error}"),
            )
        })?
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(QrView {
        url: token.url,
        // Telegram's expiry is wall time; shown on the service clock like every other time.
        expires_at: state.clock.from_wall(token.expires),
        svg,
    })
}

/// The tg://login URL and its QR code; a new one once the previous expired.
#[utoipa::path(
    operation_id = "login_qr",
    tag = "login",
    params(QrQuery),
    responses((status = 200, body = QrView), (status = 404, body = ErrorBody), (status = 409, description = LOGIN_CONFLICT, body = ErrorBody))
)]
#[get("/accounts/{id}/login/qr")]
#[tracing::instrument(name = "login.qr", skip_all, fields(account_id = %id))]
async fn qr(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<Uuid>,
    query: params::Query<QrQuery>,
) -> Result<HttpResponse, ApiError> {
    let view = current_qr(
        &state,
        &request,
        id.into_inner(),
        query.into_inner().api_hash,
    )
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The QR code alone, as an image for an `<img>` tag.
#[utoipa::path(
    operation_id = "login_qr_svg",
    tag = "login",
    params(QrQuery),
    responses(
        (status = 200, description = "An SVG document", content_type = "image/svg+xml", body = String),
        (status = 404, body = ErrorBody),
        (status = 409, description = LOGIN_CONFLICT, body = ErrorBody),
    )
)]
#[get("/accounts/{id}/login/qr.svg")]
#[tracing::instrument(name = "login.qr_svg", skip_all, fields(account_id = %id))]
async fn qr_svg(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<Uuid>,
    query: params::Query<QrQuery>,
) -> Result<HttpResponse, ApiError> {
    let view = current_qr(
        &state,
        &request,
        id.into_inner(),
        query.into_inner().api_hash,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(view.svg))
}

#[derive(Serialize, ToSchema)]
struct DemoScanView {
    /// The QR code was scanned: the login finishes, or asks for the 2FA password (see
    /// `GET .../login/status`).
    scanned: bool,
}

/// `tgwatch demo` only: "scan with the demo phone". The account's pending QR code (from
/// `GET .../login/qr`) is scanned by the account's own logged-in app in the demo's sandbox, as
/// a person would scan it with their phone; the login then goes on as after any scan. Elsewhere
/// this route does not exist and is not in the document.
#[utoipa::path(
    operation_id = "login_qr_demo_scan",
    tag = "login",
    responses(
        (status = 202, body = DemoScanView),
        (status = 404, description = "No such account, or not the demo", body = ErrorBody),
        (status = 409, description = "No QR code is waiting for a scan (`GET .../login/qr` first), or the sandbox refused it", body = ErrorBody),
    )
)]
#[post("/accounts/{id}/login/qr/demo-scan")]
async fn qr_demo_scan(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let scan = match state.logins.as_ref() {
        Some(logins) => logins.scan_with_demo_phone(id.into_inner()).await,
        None => None,
    };
    let Some(scanned) = scan else {
        // What any path that does not exist answers.
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for POST {}", super::error::echo(request.path())),
        ));
    };
    scanned?;
    Ok(HttpResponse::Accepted().json(DemoScanView { scanned: true }))
}

/// Where the account's login stands.
#[utoipa::path(
    operation_id = "login_status",
    tag = "login",
    responses((status = 200, body = LoginStatus), (status = 404, body = ErrorBody), (status = 409, description = LOGIN_CONFLICT, body = ErrorBody))
)]
#[get("/accounts/{id}/login/status")]
#[tracing::instrument(name = "login.login_status", skip_all, fields(account_id = %id))]
async fn login_status(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let status = logins(&state)?.status(id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(status))
}

#[derive(Serialize, ToSchema)]
pub(super) struct StoredSessionView {
    account_id: Uuid,
    has_session: bool,
    is_authorized: bool,
    telegram_user_id: Option<i64>,
    dc_id: Option<i32>,
    authorized_at: Option<chrono::DateTime<chrono::Utc>>,
    updated_at: Option<chrono::DateTime<chrono::Utc>>,
    has_api_hash: bool,
    has_password_hint: bool,
    /// Sealed at rest with the master key (always true; stated so operators need not wonder).
    encrypted_at_rest: bool,
}

/// What is known about the account's session, without any secret.
#[utoipa::path(
    operation_id = "get_account_session",
    tag = "login",
    responses((status = 200, body = StoredSessionView), (status = 404, body = ErrorBody), (status = 409, description = LOGIN_CONFLICT, body = ErrorBody))
)]
#[get("/accounts/{id}/session")]
#[tracing::instrument(name = "login.session_info", skip_all, fields(account_id = %id))]
async fn session_info(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(stored_session(&state, id.into_inner()).await?))
}

/// What is stored about the account's session (no secret).
pub(super) async fn stored_session(
    state: &AppState,
    id: Uuid,
) -> Result<StoredSessionView, ApiError> {
    let account = storage::accounts::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", id))?;
    let vault = logins(state)?.vault();
    let row = storage::account_sessions::load(&state.db, vault, id).await?;
    Ok(StoredSessionView {
        account_id: id,
        has_session: row.is_some(),
        is_authorized: account.is_authorized,
        telegram_user_id: row.as_ref().and_then(|row| row.telegram_user_id),
        dc_id: row.as_ref().map(|row| row.dc_id),
        authorized_at: row.as_ref().and_then(|row| row.authorized_at),
        updated_at: row.as_ref().map(|row| row.updated_at),
        has_api_hash: row.as_ref().is_some_and(|row| row.api_hash.is_some()),
        has_password_hint: row.as_ref().is_some_and(|row| row.password_hint.is_some()),
        encrypted_at_rest: true,
    })
}

#[derive(Serialize, ToSchema)]
pub(super) struct ResetView {
    /// Always true.
    reset: bool,
    /// There was a session to delete.
    had_session: bool,
}

/// Logs the account out here: deletes its stored session (log in again afterwards).
#[utoipa::path(
    operation_id = "reset_account_session",
    tag = "login",
    responses((status = 200, body = ResetView), (status = 404, body = ErrorBody), (status = 409, description = LOGIN_CONFLICT, body = ErrorBody))
)]
#[post("/accounts/{id}/session/reset")]
#[tracing::instrument(name = "login.reset", skip_all, fields(account_id = %id))]
async fn reset(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(reset_session(&state, id.into_inner()).await?))
}

/// Forgets the account's session; it must log in again.
pub(super) async fn reset_session(state: &AppState, id: Uuid) -> Result<ResetView, ApiError> {
    let had_session = logins(state)?.reset(id).await?;
    Ok(ResetView {
        reset: true,
        had_session,
    })
}

/// Exactly one of `telethon` or `session`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    /// A Telethon StringSession.
    telethon: Option<String>,
    /// A session exported by `tgwatch export-session` (`tgw1:...`).
    session: Option<String>,
    api_hash: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ImportedView {
    /// Always true.
    imported: bool,
}

/// Stores an existing session (sealed), after checking it with Telegram.
#[utoipa::path(
    operation_id = "import_account_session",
    tag = "login",
    request_body = ImportBody,
    responses((status = 200, body = ImportedView), (status = 404, body = ErrorBody), (status = 409, description = LOGIN_CONFLICT, body = ErrorBody))
)]
#[post("/accounts/{id}/session/import")]
#[tracing::instrument(name = "login.import", skip_all, fields(account_id = %id))]
async fn import(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<ImportBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    check_api_hash(body.api_hash.as_deref())?;
    let parsed = match (&body.telethon, &body.session) {
        (Some(telethon), None) => PersistedSession::from_telethon(telethon),
        (None, Some(session)) => PersistedSession::import(session),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_import",
                "give exactly one of `telethon` (a Telethon StringSession) or `session` (tgw1:...)",
            ));
        }
    }
    .map_err(|error| ApiError::bad_request("invalid_session", error.to_string()))?;
    logins(&state)?
        .import(id.into_inner(), parsed, body.api_hash)
        .await?;
    Ok(HttpResponse::Ok().json(ImportedView { imported: true }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AttemptsQuery {
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// One login step tried (seed 003's `AuthAttempt`, with its field names).
#[derive(Serialize, ToSchema)]
struct AuthAttemptView {
    id: Uuid,
    account_id: Uuid,
    /// `phone` (a code typed back), `2fa` (the password) or `qr`.
    attempt_type: &'static str,
    /// `pending`, `success`, `failed` or `timeout` (a QR code nobody scanned in time).
    status: &'static str,
    error_message: Option<String>,
    /// The client's address as the service saw it.
    client_addr: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<auth_attempts::Model> for AuthAttemptView {
    fn from(row: auth_attempts::Model) -> AuthAttemptView {
        AuthAttemptView {
            id: row.id,
            account_id: row.account_id,
            attempt_type: row.kind.as_str(),
            status: row.status.as_str(),
            error_message: row.error,
            client_addr: row.client_addr,
            created_at: row.created_at,
            finished_at: row.finished_at,
        }
    }
}

/// The account's login attempts (codes, passwords, QR codes) and how each ended, a page at a
/// time, oldest first unless `order=desc`.
#[utoipa::path(
    operation_id = "list_account_auth_attempts",
    tag = "login",
    params(AttemptsQuery),
    responses((status = 200, body = Page<AuthAttemptView>), (status = 404, body = ErrorBody))
)]
#[get("/accounts/{id}/auth-attempts")]
async fn list_auth_attempts(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: params::Query<AttemptsQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let query = query.into_inner();
    storage::accounts::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", id))?;
    let page = storage::auth_attempts::list(
        &state.db,
        id,
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(AuthAttemptView::from)))
}

impl From<LoginsError> for ApiError {
    fn from(error: LoginsError) -> ApiError {
        let message = error.to_string();
        match error {
            LoginsError::UnknownAccount(id) => ApiError::not_found("account", id),
            LoginsError::AlreadyLoggedIn => {
                ApiError::new(StatusCode::CONFLICT, "already_logged_in", message)
            }
            LoginsError::WrongStep { .. } => {
                ApiError::new(StatusCode::CONFLICT, "no_login_in_progress", message)
            }
            LoginsError::NoApiHash => ApiError::bad_request("api_hash_required", message),
            LoginsError::TooManyAttempts { retry_after } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
                    .with_details(serde_json::json!({ "retry_after": retry_after.as_secs() }))
            }
            LoginsError::DemoScan(_) => {
                ApiError::new(StatusCode::CONFLICT, "demo_scan_failed", message)
            }
            LoginsError::Login(login) => login_error(login, message),
            LoginsError::Storage(storage) => storage.into(),
            LoginsError::Session(session) => {
                ApiError::bad_request("invalid_session", session.to_string())
            }
        }
    }
}

fn login_error(error: LoginError, message: String) -> ApiError {
    let unprocessable =
        |code| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.clone());
    match error {
        LoginError::InvalidCode => unprocessable("invalid_code"),
        LoginError::CodeExpired => ApiError::new(StatusCode::GONE, "code_expired", message),
        LoginError::InvalidPassword => unprocessable("invalid_password"),
        LoginError::PhoneInvalid { .. } => unprocessable("invalid_phone"),
        LoginError::SignUpRequired => unprocessable("sign_up_required"),
        LoginError::QrExpired => ApiError::new(StatusCode::GONE, "qr_expired", message),
        LoginError::ApiIdInvalid { .. } => unprocessable("invalid_api_id"),
        LoginError::Telegram(TelegramError::FloodWait { seconds }) => {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "flood_wait", message)
                .with_details(serde_json::json!({ "retry_after": seconds }))
        }
        LoginError::Telegram(telegram) => telegram.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_hash_is_bounded_and_says_the_bound() {
        assert!(check_api_hash(None).is_ok());
        assert!(check_api_hash(Some("0123456789abcdef0123456789abcdef")).is_ok());
        for bad in ["", " ", &"a".repeat(65)] {
            let error = check_api_hash(Some(bad)).unwrap_err();
            assert_eq!(error.code, "invalid_api_hash");
            assert!(
                error.message.contains("1 to 64 characters"),
                "{}",
                error.message
            );
        }
    }
}
