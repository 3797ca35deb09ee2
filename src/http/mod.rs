//! The admin HTTP API (actix-web, JSON). Everything under `/api` needs the bearer token except
//! `/api/health` and the probes `/livez` and `/readyz`. Bad input of any kind is answered with a
//! 4xx JSON error naming what to fix.

mod accounts;
mod auth;
mod channel_messages;
mod channels;
mod chats;
pub mod dashboard;
pub mod error;
mod health;
mod login;
mod logs;
mod metrics;
mod online_statuses;
mod params;
mod probes;
pub mod request_id;
mod telegram_users;
mod tracked_users;
pub mod views;
mod webhooks;

use actix_web::{HttpRequest, HttpResponse, error::JsonPayloadError, middleware, web};

use error::ApiError;

/// Requests larger than this are refused (the API takes small JSON bodies only).
const MAX_BODY_BYTES: usize = 64 * 1024;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_BODY_BYTES)
                .error_handler(json_error),
        )
        .app_data(web::QueryConfig::default().error_handler(|error, _req| {
            ApiError::bad_request("invalid_query", error.to_string()).into()
        }))
        .app_data(web::PathConfig::default().error_handler(|error, _req| {
            ApiError::new(
                actix_web::http::StatusCode::NOT_FOUND,
                "not_found",
                format!("no such resource: {error}"),
            )
            .into()
        }))
        .route("/api/health", web::get().to(health::health))
        .route("/livez", web::get().to(probes::livez))
        .route("/readyz", web::get().to(probes::readyz))
        .route("/metrics", web::get().to(metrics::metrics))
        .configure(dashboard::routes)
        .service(
            web::scope("/api")
                .wrap(middleware::from_fn(auth::require_admin_token))
                .configure(accounts::routes)
                .configure(login::routes)
                .configure(chats::routes)
                .configure(channels::routes)
                .configure(channel_messages::routes)
                .configure(tracked_users::routes)
                .configure(telegram_users::routes)
                .configure(online_statuses::routes)
                .configure(logs::routes)
                .configure(webhooks::routes)
                .configure(dashboard::api_routes),
        )
        .default_service(web::to(not_found));
}

fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let message = match &error {
        JsonPayloadError::ContentType => {
            "send the body as JSON with `Content-Type: application/json`".to_owned()
        }
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            format!("the body is larger than {limit} bytes")
        }
        JsonPayloadError::Deserialize(error) => format!("invalid JSON body: {error}"),
        other => format!("invalid JSON body: {other}"),
    };
    ApiError::bad_request("invalid_body", message).into()
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::new(
        actix_web::http::StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", request.method(), request.path()),
    )
    .error_response()
}
