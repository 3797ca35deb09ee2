//! Bearer-token check for the admin API.

use actix_web::{
    Error, FromRequest, HttpRequest,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::StatusCode,
    middleware::Next,
    web,
};

use futures_util::future::LocalBoxFuture;

use super::error::ApiError;
use crate::state::AppState;
use tgwatch_core::constant_time;

/// Lets the request through only with `Authorization: Bearer <http.admin_token>`, or with
/// `Authorization: tma <initData>` of a Telegram Mini App user whose role is admin (the dashboard
/// opened in Telegram).
pub async fn require_admin_token(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    authorize(request.request()).await?;
    next.call(request).await
}

/// The admin's credentials, checked as [`require_admin_token`] checks them, for routes outside
/// the `/api` scope that need them (seed 002's resources live at the root): a handler that takes
/// an `Admin` runs only for the admin.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Admin, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move { authorize(&request).await.map(|()| Admin) })
    }
}

async fn authorize(request: &HttpRequest) -> Result<(), ApiError> {
    let mini_app = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| credentials(value, "tma"))
        .map(str::to_owned);
    if let Some(init_data) = mini_app {
        let live = request
            .app_data::<web::Data<AppState>>()
            .map(|state| state.live.clone());
        let who = match live {
            Some(live) => live.mini_app(&init_data, None).await?,
            None => {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "no state",
                ));
            }
        };
        if who.role != tgwatch_core::roles::Role::Admin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the admin API needs the admin role",
            ));
        }
        return Ok(());
    }
    let expected = request
        .app_data::<web::Data<AppState>>()
        .map(|state| state.admin_token.expose().as_bytes().to_vec())
        .unwrap_or_default();
    match presented_bearer(request) {
        Some(token) if is_admin_token(token, &expected) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is wrong",
        )),
        None => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer <token>`",
        )),
    }
}

/// The credentials of an `Authorization: <scheme> <credentials>` header whose scheme is `scheme`
/// in any case: RFC 7235 makes the scheme case-insensitive (`bearer` is `Bearer`).
/// Whether the request carries the admin token (`Authorization: Bearer`): open routes show more
/// to the admin.
pub fn bears_admin_token(request: &HttpRequest, state: &AppState) -> bool {
    presented_bearer(request)
        .is_some_and(|token| is_admin_token(token, state.admin_token.expose().as_bytes()))
}

fn presented_bearer(request: &HttpRequest) -> Option<&[u8]> {
    request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| credentials(value, "bearer"))
        .map(str::as_bytes)
}

fn is_admin_token(presented: &[u8], expected: &[u8]) -> bool {
    !expected.is_empty() && constant_time::eq(presented, expected)
}

fn credentials<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, credentials) = header.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| credentials.trim_start_matches(' '))
}
