//! API errors: `{"error": {"code": "...", "message": "...", "request_id": "..."}}` with a 4xx
//! status for anything the caller can fix, and a 5xx only for faults of the service itself.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::views::{AccountView, TrackedUserView};
use crate::{
    actors::messages::{ManualObservationError, ResolveError},
    tracking::TrackingError,
};
use tgwatch_core::presence::stats::WindowError;
use tgwatch_store::StorageError;
use tgwatch_telegram::{TelegramError, UsernameError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// More about the error, e.g. the existing record on a conflict.
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} {id} does not exist"),
        )
    }
}

/// Most characters of a caller's input that an error message repeats: enough to recognise the
/// value, and a 100 KB query value does not make a 100 KB error (or log line).
pub const MAX_ECHO_CHARS: usize = 64;

/// `value` as an error message may repeat it: cut to [`MAX_ECHO_CHARS`] characters.
pub fn echo(value: &str) -> String {
    cut(value, MAX_ECHO_CHARS)
}

/// `text` cut to `max_chars` characters, with an ellipsis when something was cut.
pub fn cut(text: &str, max_chars: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max_chars).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

/// The body of every error answer (the OpenAPI document's `ErrorBody`).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorObject,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// What went wrong, for programs: `not_found`, `invalid_query`, `unauthorized`, ...
    pub code: String,
    /// What went wrong and what to fix, for people.
    pub message: String,
    /// More about the error, e.g. `field` (the one to fix) or `existing` (the record a
    /// conflict is with).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// The request's id, as in the `x-request-id` header (for the service's logs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(ErrorBody {
            error: ErrorObject {
                code: self.code.to_owned(),
                message: self.message.clone(),
                details: self.details.clone(),
                request_id: super::request_id::current(),
            },
        })
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> ApiError {
        // A value that must be unique and is taken is the caller's conflict, not a fault to
        // retry. Handlers that can name the record holding it answer before this; this covers
        // every other unique index.
        if let Some(violation) = error.unique_violation() {
            let field = violation.field();
            tracing::info!(table = %violation.table, %field, "request refused: duplicate value");
            return ApiError::new(
                StatusCode::CONFLICT,
                "duplicate",
                format!(
                    "`{field}` must be unique among {}; another one has this value",
                    violation.table
                ),
            )
            .with_details(json!({ "field": field }));
        }
        tracing::error!(%error, "storage failure behind an API call");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the database did not complete the request; try again",
        )
    }
}

impl From<WindowError> for ApiError {
    fn from(error: WindowError) -> ApiError {
        ApiError::bad_request("invalid_window", error.to_string())
    }
}

impl From<UsernameError> for ApiError {
    fn from(error: UsernameError) -> ApiError {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_username",
            error.to_string(),
        )
    }
}

impl From<TelegramError> for ApiError {
    fn from(error: TelegramError) -> ApiError {
        // The chat, channel or user does not exist or is not visible to this account: the caller
        // asked for the wrong thing, Telegram itself worked.
        if error.is_not_found() {
            return ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{error}: no such chat, channel or user, or this account cannot see it"),
            );
        }
        let (status, code) = match &error {
            TelegramError::FloodWait { .. } => (StatusCode::TOO_MANY_REQUESTS, "flood_wait"),
            TelegramError::Unauthorized { .. } => (StatusCode::CONFLICT, "account_unusable"),
            TelegramError::NotLoggedIn => (StatusCode::CONFLICT, "account_not_logged_in"),
            TelegramError::Rpc { .. } | TelegramError::Migrate { .. } => {
                (StatusCode::BAD_GATEWAY, "telegram_error")
            }
            TelegramError::Connection(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "telegram_unreachable")
            }
        };
        ApiError::new(status, code, error.to_string())
    }
}

impl From<ResolveError> for ApiError {
    fn from(error: ResolveError) -> ApiError {
        match error {
            ResolveError::NotFound(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "user_not_found",
                error.to_string(),
            ),
            // The account chosen has no connection at this moment (it is connecting, or
            // reconnecting after its session or settings changed): like an account that is not
            // running, its state is in the way, and another try (or another account) can work.
            ResolveError::Telegram(TelegramError::Connection(reason)) => ApiError::new(
                StatusCode::CONFLICT,
                "account_not_connected",
                format!(
                    "the account has no connection to Telegram now ({reason}); try again, or choose another account"
                ),
            ),
            ResolveError::Telegram(error) => error.into(),
            // The account exists but has no running actor (inactive, banned, parked): its
            // state, not the service, is in the way.
            ResolveError::AccountNotRunning => ApiError::new(
                StatusCode::CONFLICT,
                "account_not_running",
                error.to_string(),
            ),
            ResolveError::Mailbox(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "account_unavailable",
                error.to_string(),
            ),
        }
    }
}

impl From<TrackingError> for ApiError {
    fn from(error: TrackingError) -> ApiError {
        let message = error.to_string();
        match error {
            TrackingError::AlreadyTracked(existing) => {
                ApiError::new(StatusCode::CONFLICT, "already_tracked", message)
                    .with_details(json!({ "existing": TrackedUserView::from(*existing) }))
            }
            TrackingError::DuplicateLabel(existing) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_label", message).with_details(
                    json!({ "field": "label", "existing": AccountView::from(*existing) }),
                )
            }
            TrackingError::DuplicateTelegramUserId(existing) => {
                ApiError::new(StatusCode::CONFLICT, "duplicate_telegram_user_id", message)
                    .with_details(json!({
                        "field": "telegram_user_id",
                        "existing": AccountView::from(*existing),
                    }))
            }
            TrackingError::Invalid { field, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
                    .with_details(json!({ "field": field }))
            }
            TrackingError::UnknownAccount(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown_account", message)
            }
            TrackingError::AccountUnusable(..) | TrackingError::NoAccountAvailable(_) => {
                ApiError::new(StatusCode::CONFLICT, "no_account_available", message)
            }
            TrackingError::NothingToTrack => ApiError::bad_request("missing_field", message),
            TrackingError::Resolve(error) => error.into(),
            TrackingError::Storage(error) => error.into(),
        }
    }
}

impl From<ManualObservationError> for ApiError {
    fn from(error: ManualObservationError) -> ApiError {
        match error {
            ManualObservationError::NotTracked(_) => ApiError::new(
                StatusCode::CONFLICT,
                "not_tracked",
                format!("{error}: track the user again to record observations"),
            ),
            ManualObservationError::Storage(error) => error.into(),
            ManualObservationError::Mailbox(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "actor_unavailable",
                error.to_string(),
            ),
        }
    }
}
