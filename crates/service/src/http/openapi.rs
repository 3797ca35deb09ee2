//! The API contract: an OpenAPI 3.1 document generated from the handlers (`#[utoipa::path]`) and
//! the types they read and write, served at `GET /api/openapi.json` without a token, and browsable
//! at `/api/docs` (Swagger UI, its files built into the binary: no CDN).
//!
//! The document's paths come from registering [`super::documented`] on an app that is never run,
//! the same function that registers the served routes, so the two cannot drift apart.

use actix_web::{HttpResponse, get, http::header, web};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        Content, OpenApi as Document_, Ref, RefOr, ResponseBuilder,
        security::{Http, HttpAuthScheme, SecurityScheme},
    },
};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{
    error::{ErrorBody, ErrorObject},
    webhooks::WebhookStatus,
};
use tgwatch_store::{logs::LogLevel, page::Order};

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tgwatch admin API",
        description = "The admin HTTP API of tgwatch. Everything under `/api` needs \
            `Authorization: Bearer <http.admin_token>` (or `Authorization: tma <initData>` of a \
            Telegram Mini App admin) except `/api/health`, this document and `/api/docs`. \
            Every error is JSON: `{\"error\": {\"code\", \"message\", \"details\"?, \
            \"request_id\"?}}`, with a 4xx status for anything the caller can fix and a 5xx only \
            for faults of the service; the one exception is `/ws`, which answers a failed \
            WebSocket upgrade with 500 (seed 004)."
    ),
    // Types that only query parameters name: utoipa does not register those by itself.
    components(schemas(ErrorBody, ErrorObject, Order, LogLevel, WebhookStatus)),
    modifiers(&Security, &Errors),
    security(("admin_token" = [])),
)]
struct ApiDoc;

/// The bearer scheme every `/api` route asks for (the open ones say `security: [{}]`).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document_) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// Gives every operation a `default` response with the error shape: whatever status an error
/// has (a 400 for a bad parameter, a 401, a 404 for a bad path segment, a 413, a 503 while the
/// database is away, ...) its body is an [`ErrorBody`]. Operations list the errors particular to
/// them besides.
struct Errors;

impl Modify for Errors {
    fn modify(&self, openapi: &mut Document_) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .entry("default".to_owned())
                    .or_insert_with(error_response);
            }
        }
    }
}

fn error_response() -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description("An error; `error.code` says which and `error.message` what to fix")
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build(),
    )
}

/// The document, generated once per app (each HTTP worker builds its own app) and kept
/// serialised.
pub struct Document {
    json: String,
}

impl Document {
    pub fn build(switches: super::Switches) -> Document {
        let json = openapi(switches).to_json().unwrap_or_else(|error| {
            // Serialising a tree of strings and maps cannot fail; should it, the page says so.
            tracing::error!(%error, "cannot serialise the OpenAPI document");
            String::from("{}")
        });
        Document { json }
    }
}

/// The OpenAPI document of [`super::documented`] with these switches.
pub fn openapi(switches: super::Switches) -> Document_ {
    let (_, mut document) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(super::documented(switches))
        .split_for_parts();
    // The modifiers of `ApiDoc` ran before the paths were added: run them on the whole.
    Security.modify(&mut document);
    Errors.modify(&mut document);
    document
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    operation_id = "openapi",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
#[get("/api/openapi.json")]
#[tracing::instrument(name = "openapi.openapi_json", skip_all)]
pub async fn openapi_json(document: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.json.clone())
}

/// The browsable page of this document (Swagger UI) lives at `/api/docs/`; this redirects there.
#[utoipa::path(
    get,
    path = "/api/docs",
    operation_id = "docs",
    tag = "meta",
    security(()),
    responses(
        (status = 308, description = "To `/api/docs/`, the Swagger UI page",
            headers(("location" = String, description = "`docs/`"))),
        (status = 200, description = "The page, for a client that follows the redirect", content_type = "text/html", body = String),
    )
)]
#[get("/api/docs")]
#[tracing::instrument(name = "openapi.docs", skip_all)]
pub async fn docs() -> HttpResponse {
    // Relative, so that it works behind a proxy that mounts the service under a prefix.
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "docs/"))
        .finish()
}

/// Swagger UI at `/api/docs/`, reading [`DOCUMENT_PATH`].
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/api/docs/{_:.*}").config(Config::new([DOCUMENT_PATH]))
}
