//! The admin HTTP API (actix-web, JSON). Everything under `/api` needs the bearer token except
//! `/api/health` and the probes `/livez` and `/readyz`; so do seed 003's routes under
//! `/telegram` (`seed_003`), except its page and `/telegram/ws`. Bad input of any kind is answered with a
//! 4xx JSON error naming what to fix.

mod accounts;
mod auth;
mod channel_messages;
mod channels;
mod chats;
mod cluster;
pub mod dashboard;
pub mod error;
mod health;
mod login;
mod logs;
mod metrics;
mod online_statuses;
pub mod openapi;
mod params;
mod probes;
pub mod request_id;
mod seeds;
mod supervision;
mod telegram_users;
mod tracked_users;
pub mod trailing_slash;
pub mod views;
mod webhooks;

use actix_web::{
    HttpRequest, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    error::{JsonPayloadError, PathError},
    http::StatusCode,
    middleware::{self, Next},
    web,
};

use error::ApiError;

/// Requests larger than this are refused (the API takes small JSON bodies only).
const MAX_BODY_BYTES: usize = 64 * 1024;

/// Routes that exist only when switched on; the document lists them only then.
#[derive(Clone, Copy, Debug, Default)]
pub struct Switches {
    /// `POST /api/faults/panic` (`[testing] fault_injection`).
    pub fault_injection: bool,
    /// `POST /api/accounts/{id}/login/qr/demo-scan` (`tgwatch demo`, whose sandbox has a phone
    /// that scans QR codes).
    pub demo_phone: bool,
}

/// Registers the service's routes: the document's own two routes first, then every documented
/// route ([`documented`]), then the JSON 404/405 for the rest.
pub fn routes(switches: Switches) -> impl FnOnce(&mut web::ServiceConfig) {
    move |config| register(config, switches)
}

fn register(config: &mut web::ServiceConfig, switches: Switches) {
    config
        .app_data(
            web::JsonConfig::default()
                .limit(MAX_BODY_BYTES)
                .error_handler(json_error),
        )
        .app_data(web::PathConfig::default().error_handler(path_error))
        .app_data(web::Data::new(openapi::Document::build(switches)))
        // The browsable page (Swagger UI, its files built into the binary); before the `/api`
        // scope, which would ask for the token. Its files are not API operations, so they are
        // the one route the document leaves out.
        .service(openapi::swagger_ui());
    documented(switches)(&mut utoipa_actix_web::service_config::ServiceConfig::new(
        config,
    ));
    config.default_service(web::to(not_found));
}

/// Every route of the service, each registered and documented by the same `service` call:
/// utoipa-actix-web adds a handler's `#[utoipa::path]` to the document as it registers it, so
/// what is served and what is documented cannot differ ([`openapi::Document::build`] runs this
/// too). A route registered only under some condition is documented only under it.
pub fn documented(
    switches: Switches,
) -> impl FnOnce(&mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    move |config| document_routes(config, switches)
}

fn document_routes(
    config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>,
    switches: Switches,
) {
    config
        // Open routes, before the `/api` scope (which asks for the token).
        .service(openapi::openapi_json)
        .service(openapi::docs)
        .service(health::health)
        .service(probes::livez)
        .service(probes::readyz)
        .service(metrics::metrics)
        .configure(dashboard::routes)
        // Seed 002's resources at the root (each handler asks for the admin token itself).
        .configure(seeds::seed_002::routes)
        // Seed 003's API under `/telegram` (its page, `/telegram`, and `/telegram/ws` are
        // dashboard routes, registered before: they need no token).
        .service(
            utoipa_actix_web::scope("/telegram")
                .wrap(middleware::from_fn(auth::require_admin_token))
                .configure(seeds::seed_003::routes),
        )
        .service(
            utoipa_actix_web::scope("/api")
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
                .configure(supervision::routes)
                .configure(cluster::routes)
                .configure(|config| {
                    if switches.fault_injection {
                        supervision::fault_routes(config);
                    }
                    if switches.demo_phone {
                        login::demo_routes(config);
                    }
                })
                .configure(dashboard::api_routes),
        );
}

/// Longest request target (path and query) served. A longer one is refused with a 414 before
/// anything else runs, logged at debug only: anyone can send one, token or not. (Beyond 64 KiB
/// actix-http itself refuses the request line.)
const MAX_URI_BYTES: usize = 32 * 1024;

/// Refuses request targets over [`MAX_URI_BYTES`] (wraps the whole app).
pub async fn refuse_long_uri(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if length > MAX_URI_BYTES {
        tracing::debug!(length, "refused a request target over the limit");
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the path and query are {length} bytes long; at most {MAX_URI_BYTES} are read"),
        )
        .into());
    }
    next.call(request).await
}

/// Longest part of a JSON parser's message repeated: it can quote the body's own strings.
const MAX_JSON_DETAIL_CHARS: usize = 400;

fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
    let message = match &error {
        JsonPayloadError::ContentType => {
            "send the body as JSON with `Content-Type: application/json`".to_owned()
        }
        JsonPayloadError::Overflow { limit }
        | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {limit} bytes"),
            )
            .into();
        }
        JsonPayloadError::Deserialize(error) => format!(
            "invalid JSON body: {}",
            error::cut(&error.to_string(), MAX_JSON_DETAIL_CHARS)
        ),
        other => format!(
            "invalid JSON body: {}",
            error::cut(&other.to_string(), MAX_JSON_DETAIL_CHARS)
        ),
    };
    ApiError::bad_request("invalid_body", message).into()
}

/// A path segment that does not fit its type: named, with what it takes. actix's message
/// quotes the value of a number ("can not parse \"abc\" to a i32") but not of a UUID, so the
/// segment is the one quoted, else the first that is not a UUID (every path id is one or the
/// other).
fn path_error(error: PathError, request: &HttpRequest) -> actix_web::Error {
    let detail = error.to_string();
    let segments = request.match_info();
    let number = detail.contains("can not parse");
    let bad = segments
        .iter()
        .find(|(_, value)| number && detail.contains(&format!("{value:?}")))
        .or_else(|| {
            segments
                .iter()
                .find(|(_, value)| uuid::Uuid::parse_str(value).is_err())
        });
    let message = match bad {
        Some((name, value)) => format!(
            "path parameter `{name}` must be {} (got `{}`)",
            if number { "a whole number" } else { "a UUID" },
            error::echo(value)
        ),
        None => format!(
            "no such resource: {}",
            error::cut(&detail, MAX_JSON_DETAIL_CHARS)
        ),
    };
    ApiError::new(StatusCode::NOT_FOUND, "not_found", message).into()
}

/// No route matched: a path that exists with other methods is a 405, anything else a 404.
async fn not_found(request: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    let path = error::echo(request.path());
    let error = if request.resource_map().has_resource(request.path()) {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {path}", request.method()),
        )
    } else {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {} {path}", request.method()),
        )
    };
    error.error_response()
}
