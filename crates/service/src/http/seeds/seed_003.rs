//! Seed 003 (the Telethon integration's Django app) at its own paths under `/telegram/`: thin
//! adapters over the login flow ([`super::super::login`]) and the chats ([`super::super::chats`]), acting on
//! one account chosen by `?account=<label or id>` (the only account when there is one). Behind
//! the admin token, which stands in for the seed's Django login. The seed's two pages are served
//! by the dashboard ([`super::super::dashboard`]) at `/telegram`.

use actix_web::{HttpRequest, HttpResponse, get, http::StatusCode, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::super::{
    chats::{self, ChatMessagesView, ChatView},
    error::{ApiError, ErrorBody},
    login::{self, QrView, ResetView, StoredSessionView},
    params,
};
use crate::state::AppState;
use tgwatch_store as storage;
use tgwatch_telegram::logins::LoginStatus;

/// The OpenAPI tag of every route here.
const TAG: &str = "seed 003 (Telethon integration)";

/// Labels named in an error message at most (all of them are in `details.choices`).
const MAX_NAMED_CHOICES: usize = 20;

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(auth_phone)
        .service(auth_verify)
        .service(auth_qr)
        .service(auth_qr_status)
        .service(session_status)
        .service(session_reset)
        .service(session_info)
        .service(chat_list)
        .service(chat_messages)
        .service(user_info);
}

/// An account as `?account=` can name it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Choice {
    id: Uuid,
    label: String,
}

/// The account `wanted` names (its id, or its label), or the only account when `wanted` is
/// absent; else an error that names the choices.
fn choose<'a>(choices: &'a [Choice], wanted: Option<&str>) -> Result<&'a Choice, ApiError> {
    let named = || {
        let labels: Vec<&str> = choices
            .iter()
            .take(MAX_NAMED_CHOICES)
            .map(|choice| choice.label.as_str())
            .collect();
        let more = choices.len().saturating_sub(MAX_NAMED_CHOICES);
        let mut text = labels.join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    };
    let details = || {
        serde_json::json!({
            "choices": choices
                .iter()
                .map(|choice| serde_json::json!({"id": choice.id, "label": choice.label}))
                .collect::<Vec<_>>()
        })
    };
    let wanted = wanted.map(str::trim).filter(|wanted| !wanted.is_empty());
    match (wanted, choices) {
        (_, []) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_account",
            "there is no account yet: add one (POST /api/accounts or [[accounts]] in config.toml)",
        )),
        (None, [only]) => Ok(only),
        (None, _) => Err(ApiError::bad_request(
            "account_required",
            format!(
                "there are {} accounts: choose one with `?account=<label or id>`: {}",
                choices.len(),
                named()
            ),
        )
        .with_details(details())),
        (Some(wanted), _) => {
            let id = Uuid::parse_str(wanted).ok();
            choices
                .iter()
                .find(|choice| Some(choice.id) == id || choice.label == wanted)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "unknown_account",
                        format!(
                            "query parameter `account`: no account `{}` (a label or an id); choose one of: {}",
                            super::super::error::echo(wanted),
                            named()
                        ),
                    )
                    .with_details(details())
                })
        }
    }
}

/// The account a request acts on (see [`choose`]).
async fn chosen_account(state: &AppState, wanted: Option<&str>) -> Result<Uuid, ApiError> {
    Ok(chosen(state, wanted).await?.id)
}

/// The account a request acts on, with its label.
async fn chosen(state: &AppState, wanted: Option<&str>) -> Result<Choice, ApiError> {
    let choices: Vec<Choice> = storage::accounts::all(&state.db)
        .await?
        .into_iter()
        .map(|account| Choice {
            id: account.id,
            label: account.label,
        })
        .collect();
    choose(&choices, wanted).cloned()
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AccountQuery {
    /// The account's label or id; may be left out when there is only one account.
    account: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    /// In international format (`+` and 7 to 15 digits); the account's phone when absent.
    phone: Option<String>,
    /// `telegram.api_hash` when absent.
    api_hash: Option<String>,
}

/// `POST /telegram/auth/phone/`: Telegram sends a login code to the phone.
#[utoipa::path(
    operation_id = "seed003_auth_phone",
    tag = TAG,
    params(AccountQuery),
    request_body = PhoneBody,
    responses(
        (status = 200, description = "Where the login stands (`state`: `code_sent`)", body = LoginStatus),
        (status = 400, description = "A bad phone, or `account` missing or unknown (the choices are named)", body = ErrorBody),
        (status = 409, description = "No account, already logged in, or no MTProto logins", body = ErrorBody),
    )
)]
#[post("/auth/phone")]
async fn auth_phone(
    state: web::Data<AppState>,
    query: params::Query<AccountQuery>,
    body: params::Json<PhoneBody>,
) -> Result<HttpResponse, ApiError> {
    let id = chosen_account(&state, query.account.as_deref()).await?;
    let body = body.into_inner();
    let status = login::send_code_to(&state, id, body.phone, body.api_hash).await?;
    Ok(HttpResponse::Ok().json(status))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    /// The phone the code was sent to (checked against the login in progress when given).
    phone: Option<String>,
    /// The code Telegram sent; not needed when only the 2FA password is missing.
    code: Option<String>,
    /// The 2FA password, when the account has one: checked right after the code.
    password: Option<String>,
}

/// Only the digits of a phone number: `+7 900 123-45-67` and `79001234567` are one phone.
fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// `POST /telegram/auth/verify/`: the code, and the 2FA password in the same call when the
/// account has one (as Telethon's `sign_in` does). An answer with `state: password_needed`
/// asks for the password: send it (with or without the code) in a second call.
#[utoipa::path(
    operation_id = "seed003_auth_verify",
    tag = TAG,
    params(AccountQuery),
    request_body = VerifyBody,
    responses(
        (status = 200, description = "Where the login stands: `logging_in` / `logged_in` once it succeeded, `password_needed` when the password is missing", body = LoginStatus),
        (status = 400, description = "A missing or malformed code, a phone other than the login's, or `account` missing or unknown", body = ErrorBody),
        (status = 409, description = "No code was sent (POST /telegram/auth/phone/ first), or no MTProto logins", body = ErrorBody),
        (status = 410, description = "The code expired", body = ErrorBody),
        (status = 422, description = "A wrong code or password", body = ErrorBody),
        (status = 429, description = "Too many wrong tries (`details.retry_after`)", body = ErrorBody),
    )
)]
#[post("/auth/verify")]
async fn auth_verify(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: params::Query<AccountQuery>,
    body: params::Json<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let id = chosen_account(&state, query.account.as_deref()).await?;
    let body = body.into_inner();
    let mut status = login::logins(&state)?.status(id).await?;
    if let (Some(given), Some(pending)) = (&body.phone, &status.phone)
        && phone_digits(given) != phone_digits(pending)
    {
        return Err(ApiError::bad_request(
            "phone_mismatch",
            format!(
                "`phone` is not the phone the code was sent to ({pending}); send the code to `{}` first (POST /telegram/auth/phone/)",
                super::super::error::echo(given)
            ),
        ));
    }
    if status.state != "password_needed" {
        let code = body.code.as_deref().ok_or_else(|| {
            ApiError::bad_request(
                "code_required",
                "`code` is required: the digits Telegram sent",
            )
        })?;
        status = login::submit_code_of(&state, &request, id, code).await?;
    }
    if status.state == "password_needed"
        && let Some(password) = &body.password
    {
        status = login::submit_password_of(&state, &request, id, password).await?;
    }
    Ok(HttpResponse::Ok().json(status))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct QrQuery {
    /// The account's label or id; may be left out when there is only one account.
    account: Option<String>,
    /// `telegram.api_hash` when absent.
    api_hash: Option<String>,
}

/// `GET /telegram/auth/qr/`: the `tg://login` URL (`url`) and its QR code; a new one once the
/// previous expired. Scan it in Telegram (Settings, Devices, Link Desktop Device).
#[utoipa::path(
    operation_id = "seed003_auth_qr",
    tag = TAG,
    params(QrQuery),
    responses(
        (status = 200, body = QrView),
        (status = 400, description = "`account` missing or unknown", body = ErrorBody),
        (status = 409, description = "No account, already logged in, or no MTProto logins", body = ErrorBody),
    )
)]
#[get("/auth/qr")]
async fn auth_qr(
    state: web::Data<AppState>,
    request: HttpRequest,
    query: params::Query<QrQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let id = chosen_account(&state, query.account.as_deref()).await?;
    let view = login::current_qr(&state, &request, id, query.api_hash).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `GET /telegram/auth/qr/status/`: whether the QR code was scanned (`state`: `qr_pending`,
/// `qr_expired`, `password_needed`, `logging_in`, `logged_in`).
#[utoipa::path(
    operation_id = "seed003_auth_qr_status",
    tag = TAG,
    params(AccountQuery),
    responses(
        (status = 200, body = LoginStatus),
        (status = 400, description = "`account` missing or unknown", body = ErrorBody),
        (status = 409, description = "No account, or no MTProto logins", body = ErrorBody),
    )
)]
#[get("/auth/qr/status")]
async fn auth_qr_status(
    state: web::Data<AppState>,
    query: params::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = chosen_account(&state, query.account.as_deref()).await?;
    let status = login::logins(&state)?.status(id).await?;
    Ok(HttpResponse::Ok().json(status))
}

/// Whether the account is logged in.
#[derive(Serialize, ToSchema)]
struct SessionStatusView {
    account_id: Uuid,
    /// The account's label.
    account: String,
    is_authorized: bool,
    /// Where a login stands (`none`, `code_sent`, `password_needed`, `qr_pending`,
    /// `qr_expired`, `logging_in`, `logged_in`).
    state: &'static str,
}

/// `GET /telegram/session/status/`: whether the chosen account is logged in.
#[utoipa::path(
    operation_id = "seed003_session_status",
    tag = TAG,
    params(AccountQuery),
    responses(
        (status = 200, body = SessionStatusView),
        (status = 400, description = "`account` missing or unknown", body = ErrorBody),
        (status = 409, description = "No account, or no MTProto logins", body = ErrorBody),
    )
)]
#[get("/session/status")]
async fn session_status(
    state: web::Data<AppState>,
    query: params::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let account = chosen(&state, query.account.as_deref()).await?;
    let status = login::logins(&state)?.status(account.id).await?;
    Ok(HttpResponse::Ok().json(SessionStatusView {
        account_id: account.id,
        account: account.label,
        is_authorized: status.is_authorized,
        state: status.state,
    }))
}

/// `POST /telegram/session/reset/`: forgets the account's session (log in again afterwards).
#[utoipa::path(
    operation_id = "seed003_session_reset",
    tag = TAG,
    params(AccountQuery),
    responses(
        (status = 200, body = ResetView),
        (status = 400, description = "`account` missing or unknown", body = ErrorBody),
        (status = 409, description = "No account, or no MTProto logins", body = ErrorBody),
    )
)]
#[post("/session/reset")]
async fn session_reset(
    state: web::Data<AppState>,
    query: params::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = chosen_account(&state, query.account.as_deref()).await?;
    Ok(HttpResponse::Ok().json(login::reset_session(&state, id).await?))
}

/// `GET /telegram/session/info/`: what is stored about the session (never a secret).
#[utoipa::path(
    operation_id = "seed003_session_info",
    tag = TAG,
    params(AccountQuery),
    responses(
        (status = 200, body = StoredSessionView),
        (status = 400, description = "`account` missing or unknown", body = ErrorBody),
        (status = 409, description = "No account, or no MTProto logins", body = ErrorBody),
    )
)]
#[get("/session/info")]
async fn session_info(
    state: web::Data<AppState>,
    query: params::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = chosen_account(&state, query.account.as_deref()).await?;
    Ok(HttpResponse::Ok().json(login::stored_session(&state, id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ChatsQuery {
    /// The account's label or id; may be left out when there is only one account.
    account: Option<String>,
    /// 1 to 100 (default 50).
    limit: Option<usize>,
}

/// `GET /telegram/chats/`: the account's chats, most recent first, read from Telegram now.
#[utoipa::path(
    operation_id = "seed003_chats",
    tag = TAG,
    params(ChatsQuery),
    responses(
        (status = 200, body = params::Items<ChatView>),
        (status = 400, description = "A bad `limit`, or `account` missing or unknown", body = ErrorBody),
        (status = 409, description = "No account, or the account is not running (not logged in, banned or parked)", body = ErrorBody),
    )
)]
#[get("/chats")]
async fn chat_list(
    state: web::Data<AppState>,
    query: params::Query<ChatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let id = chosen_account(&state, query.account.as_deref()).await?;
    let items = chats::list_chats(&state, id, query.limit).await?;
    Ok(HttpResponse::Ok().json(params::Items { items }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct MessagesQuery {
    /// The account's label or id; may be left out when there is only one account.
    account: Option<String>,
    /// Messages older than this id (paging backwards); the newest when absent.
    before_id: Option<i32>,
    /// 1 to 100 (default 50).
    limit: Option<usize>,
}

/// `GET /telegram/chats/<chat_id>/messages/`: a chat's messages, newest first, read from
/// Telegram now; `next_before_id` pages back.
#[utoipa::path(
    operation_id = "seed003_chat_messages",
    tag = TAG,
    params(
        ("chat_id" = i64, Path, description = "The chat's id (`chat_id` of the chats list: Bot API style)"),
        MessagesQuery,
    ),
    responses(
        (status = 200, body = ChatMessagesView),
        (status = 400, description = "A bad `limit` or `before_id`, or `account` missing or unknown", body = ErrorBody),
        (status = 404, description = "No such chat, or the account cannot see it", body = ErrorBody),
        (status = 409, description = "No account, or the account is not running", body = ErrorBody),
    )
)]
#[get("/chats/{chat_id}/messages")]
async fn chat_messages(
    state: web::Data<AppState>,
    chat_id: web::Path<i64>,
    query: params::Query<MessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let id = chosen_account(&state, query.account.as_deref()).await?;
    let page = chats::chat_messages(
        &state,
        id,
        chat_id.into_inner(),
        query.before_id,
        query.limit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// The account's own Telegram user (seed 003's `TelegramUser`).
#[derive(Serialize, ToSchema)]
struct UserInfoView {
    account_id: Uuid,
    telegram_id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
    phone: Option<String>,
}

/// `GET /telegram/user/info/`: who the account is on Telegram, asked now.
#[utoipa::path(
    operation_id = "seed003_user_info",
    tag = TAG,
    params(AccountQuery),
    responses(
        (status = 200, body = UserInfoView),
        (status = 400, description = "`account` missing or unknown", body = ErrorBody),
        (status = 409, description = "No account, or the account is not running (not logged in, banned or parked)", body = ErrorBody),
    )
)]
#[get("/user/info")]
async fn user_info(
    state: web::Data<AppState>,
    query: params::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = chosen_account(&state, query.account.as_deref()).await?;
    let me = chats::account_session(&state, id).await?.get_me().await?;
    Ok(HttpResponse::Ok().json(UserInfoView {
        account_id: id,
        telegram_id: me.id,
        first_name: me.first_name,
        last_name: me.last_name,
        username: me.username,
        phone: me.phone,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(n: u128, label: &str) -> Choice {
        Choice {
            id: Uuid::from_u128(n),
            label: label.to_owned(),
        }
    }

    #[test]
    fn the_only_account_is_chosen_when_none_is_named() {
        let only = [choice(1, "main")];
        assert_eq!(choose(&only, None).expect("only").id, Uuid::from_u128(1));
        assert_eq!(
            choose(&only, Some(" ")).expect("blank").id,
            Uuid::from_u128(1)
        );
    }

    #[test]
    fn an_account_is_named_by_label_or_id() {
        let two = [choice(1, "main"), choice(2, "spare")];
        assert_eq!(
            choose(&two, Some("spare")).expect("label").id,
            Uuid::from_u128(2)
        );
        let id = Uuid::from_u128(1).to_string();
        assert_eq!(choose(&two, Some(&id)).expect("id").id, Uuid::from_u128(1));
    }

    #[test]
    fn several_accounts_and_none_named_is_a_400_naming_the_choices() {
        let two = [choice(1, "main"), choice(2, "spare")];
        let error = choose(&two, None).expect_err("ambiguous");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "account_required");
        assert!(error.message.contains("main, spare"), "{}", error.message);
        let details = error.details.expect("details");
        assert_eq!(details["choices"][1]["label"], "spare");

        let error = choose(&two, Some("ghost")).expect_err("unknown");
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert_eq!(error.code, "unknown_account");
        assert!(error.message.contains("`ghost`"), "{}", error.message);
        assert!(error.message.contains("main, spare"), "{}", error.message);
    }

    #[test]
    fn no_account_at_all_is_a_conflict() {
        let error = choose(&[], Some("main")).expect_err("none");
        assert_eq!(error.status, StatusCode::CONFLICT);
        assert_eq!(error.code, "no_account");
    }

    #[test]
    fn phones_compare_by_their_digits() {
        assert_eq!(
            phone_digits("+7 900 123-45-67"),
            phone_digits("79001234567")
        );
        assert_ne!(phone_digits("+79001234567"), phone_digits("+79001234568"));
    }
}
