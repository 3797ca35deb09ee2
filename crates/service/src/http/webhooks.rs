//! `/api/webhooks`: endpoints, their deliveries, tests, redelivery and replay.

use actix_web::{HttpResponse, delete, get, http::StatusCode, patch, post, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
};
use crate::{
    state::AppState,
    webhooks::endpoints::{self, EndpointError, EndpointPatch, EndpointRequest},
};
use tgwatch_core::config::Origin;
use tgwatch_store::page::{Order, Page};
use tgwatch_store::webhooks::EndpointStatus;
use tgwatch_store::{
    self as storage,
    entities::{webhook_deliveries, webhooks},
    webhooks::DeliveryFilter,
};

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(list)
        .service(create)
        .service(get)
        .service(update)
        .service(delete)
        .service(rotate_secret)
        .service(deliveries)
        .service(test)
        .service(replay)
        .service(redeliver);
}

impl From<EndpointError> for ApiError {
    fn from(error: EndpointError) -> ApiError {
        match error {
            EndpointError::Storage(error) => error.into(),
            EndpointError::DuplicateName(ref existing) => {
                let existing = WebhookView::from((**existing).clone());
                ApiError::new(StatusCode::CONFLICT, "duplicate_name", error.to_string())
                    .with_details(json!({ "field": "name", "existing": existing }))
            }
            other => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_webhook",
                other.to_string(),
            ),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct WebhookView {
    id: Uuid,
    name: Option<String>,
    url: String,
    event_types: Vec<String>,
    tracked_user_id: Option<Uuid>,
    status: EndpointStatus,
    status_reason: Option<String>,
    failure_count: i32,
    consecutive_failed_messages: i32,
    last_triggered: Option<chrono::DateTime<chrono::Utc>>,
    previous_secret_valid_until: Option<chrono::DateTime<chrono::Utc>>,
    source: Origin,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

/// An endpoint with its signing secret, shown when it is made (created, rotated) and never again.
#[derive(Serialize, ToSchema)]
struct WebhookWithSecret {
    #[serde(flatten)]
    webhook: WebhookView,
    /// `whsec_...`: what consumers verify signatures with (Standard Webhooks).
    secret: String,
}

impl From<webhooks::Model> for WebhookView {
    fn from(row: webhooks::Model) -> Self {
        WebhookView {
            event_types: storage::webhooks::event_types(&row),
            id: row.id,
            name: row.name,
            url: row.url,
            tracked_user_id: row.tracked_user_id,
            status: row.status,
            status_reason: row.status_reason,
            failure_count: row.failure_count,
            consecutive_failed_messages: row.consecutive_failed_messages,
            last_triggered: row.last_triggered,
            previous_secret_valid_until: row.previous_secret_until,
            source: row.source,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct DeliveryView {
    id: Uuid,
    webhook_id: Uuid,
    event_id: String,
    attempt: i32,
    success: bool,
    status_code: Option<i32>,
    response_body: Option<String>,
    error: Option<String>,
    latency_ms: i32,
    request_body: String,
    triggered_at: chrono::DateTime<chrono::Utc>,
    completed_at: chrono::DateTime<chrono::Utc>,
}

impl From<webhook_deliveries::Model> for DeliveryView {
    fn from(row: webhook_deliveries::Model) -> Self {
        DeliveryView {
            id: row.id,
            webhook_id: row.webhook_id,
            event_id: row.event_id,
            attempt: row.attempt,
            success: row.success,
            status_code: row.status_code,
            response_body: row.response_body,
            error: row.error,
            latency_ms: row.latency_ms,
            request_body: row.request_body,
            triggered_at: row.triggered_at,
            completed_at: row.completed_at,
        }
    }
}

/// The `status` filter of the list.
#[derive(Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum WebhookStatus {
    Active,
    Inactive,
    Disabled,
}

impl From<WebhookStatus> for EndpointStatus {
    fn from(status: WebhookStatus) -> EndpointStatus {
        match status {
            WebhookStatus::Active => EndpointStatus::Active,
            WebhookStatus::Inactive => EndpointStatus::Inactive,
            WebhookStatus::Disabled => EndpointStatus::Disabled,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    status: Option<WebhookStatus>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// The webhook endpoints, a page at a time.
#[utoipa::path(
    operation_id = "list_webhooks",
    tag = "webhooks",
    params(ListQuery),
    responses((status = 200, body = Page<WebhookView>))
)]
#[get("/webhooks")]
#[tracing::instrument(name = "webhooks.list", skip_all)]
async fn list(
    state: web::Data<AppState>,
    query: params::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = storage::webhooks::list(
        &state.db,
        query.status.map(EndpointStatus::from),
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(WebhookView::from)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewWebhookBody {
    /// http(s); a private, loopback or link-local address only with
    /// `webhooks.allow_private_addresses`, and inside `webhooks.allowed_destinations` when set.
    url: String,
    /// Event types (`user.online`, `channel.message.created`, ...) or `all` (the default).
    #[serde(default = "all")]
    #[schema(default = json!(["all"]))]
    event_types: Vec<String>,
    /// Only this tracked user's events.
    tracked_user_id: Option<Uuid>,
    /// Unique among endpoints.
    name: Option<String>,
}

fn all() -> Vec<String> {
    vec!["all".to_owned()]
}

/// Registers an endpoint; the answer holds its signing secret, shown this once.
#[utoipa::path(
    operation_id = "create_webhook",
    tag = "webhooks",
    request_body = NewWebhookBody,
    responses(
        (status = 201, body = WebhookWithSecret),
        (status = 409, description = "The name is taken (`details.existing`)", body = ErrorBody),
        (status = 422, description = "The URL or an event type is refused", body = ErrorBody),
    )
)]
#[post("/webhooks")]
#[tracing::instrument(name = "webhooks.create", skip_all)]
async fn create(
    state: web::Data<AppState>,
    body: params::Json<NewWebhookBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = EndpointRequest {
        name: body.name,
        url: body.url,
        event_types: body.event_types,
        tracked_user_id: body.tracked_user_id,
    };
    let (row, secret) = endpoints::create(
        &state.db,
        &state.webhooks,
        request,
        None,
        Origin::Api,
        state.clock.now(),
    )
    .await?;
    // Shown this once: it is what consumers verify signatures with.
    Ok(HttpResponse::Created().json(WebhookWithSecret {
        webhook: WebhookView::from(row),
        secret: secret.expose().to_owned(),
    }))
}

async fn find(state: &AppState, id: Uuid) -> Result<webhooks::Model, ApiError> {
    storage::webhooks::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook", id))
}

#[utoipa::path(
    operation_id = "get_webhook",
    tag = "webhooks",
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody))
)]
#[get("/webhooks/{id}")]
#[tracing::instrument(name = "webhooks.get", skip_all, fields(webhook_id = %id))]
async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(WebhookView::from(find(&state, id.into_inner()).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    /// `active` or `inactive` (an endpoint the service disabled comes back with `active`).
    status: Option<String>,
}

#[utoipa::path(
    operation_id = "update_webhook",
    tag = "webhooks",
    request_body = PatchBody,
    responses(
        (status = 200, body = WebhookView),
        (status = 404, body = ErrorBody),
        (status = 422, description = "The URL, an event type or the status is refused", body = ErrorBody),
    )
)]
#[patch("/webhooks/{id}")]
#[tracing::instrument(name = "webhooks.update", skip_all, fields(webhook_id = %id))]
async fn update(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    let body = body.into_inner();
    let patch = EndpointPatch {
        url: body.url,
        event_types: body.event_types,
        status: body.status,
    };
    let row = endpoints::update(
        &state.db,
        &state.webhooks,
        existing,
        patch,
        state.clock.now(),
    )
    .await?;
    state.wake.wake();
    Ok(HttpResponse::Ok().json(WebhookView::from(row)))
}

#[utoipa::path(
    operation_id = "delete_webhook",
    tag = "webhooks",
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody))
)]
#[delete("/webhooks/{id}")]
#[tracing::instrument(name = "webhooks.delete", skip_all, fields(webhook_id = %id))]
async fn delete(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    storage::webhooks::delete(&state.db, existing.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret; the previous one still signs for `webhooks.secret_overlap_hours`.
#[utoipa::path(
    operation_id = "rotate_webhook_secret",
    tag = "webhooks",
    responses((status = 200, body = WebhookWithSecret), (status = 404, body = ErrorBody))
)]
#[post("/webhooks/{id}/rotate-secret")]
#[tracing::instrument(name = "webhooks.rotate_secret", skip_all, fields(webhook_id = %id))]
async fn rotate_secret(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    let (row, secret) =
        endpoints::rotate_secret(&state.db, &state.webhooks, existing, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(WebhookWithSecret {
        webhook: WebhookView::from(row),
        secret: secret.expose().to_owned(),
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryQuery {
    success: Option<bool>,
    /// RFC 3339 (`2026-01-01T12:00:00Z`) or a date (`2026-01-01`).
    since: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// The endpoint's delivery attempts, a page at a time.
#[utoipa::path(
    operation_id = "list_webhook_deliveries",
    tag = "webhooks",
    params(DeliveryQuery),
    responses((status = 200, body = Page<DeliveryView>), (status = 404, body = ErrorBody))
)]
#[get("/webhooks/{id}/deliveries")]
#[tracing::instrument(name = "webhooks.deliveries", skip_all, fields(webhook_id = %id))]
async fn deliveries(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: params::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = find(&state, id.into_inner()).await?;
    let query = query.into_inner();
    let filter = DeliveryFilter {
        webhook_id: endpoint.id,
        success: query.success,
        since: params::timestamp("since", query.since.as_deref())?,
    };
    let page = storage::webhooks::deliveries(
        &state.db,
        filter,
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(DeliveryView::from)))
}

/// The id of an event queued for delivery.
#[derive(Serialize, ToSchema)]
struct Queued {
    event_id: String,
}

/// Queues a `webhook.test` event for the endpoint; its delivery shows in the deliveries.
#[utoipa::path(
    operation_id = "test_webhook",
    tag = "webhooks",
    responses((status = 202, body = Queued), (status = 404, body = ErrorBody))
)]
#[post("/webhooks/{id}/test")]
#[tracing::instrument(name = "webhooks.test", skip_all, fields(webhook_id = %id))]
async fn test(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let endpoint = find(&state, id.into_inner()).await?;
    let event =
        storage::webhooks::queue_test_event(&state.db, &endpoint, state.clock.now()).await?;
    state.metrics.events_written([event.event_type]);
    state.wake.wake();
    Ok(HttpResponse::Accepted().json(Queued { event_id: event.id }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ReplayQuery {
    /// Events from this moment on: RFC 3339 (`2026-01-01T12:00:00Z`) or a date (`2026-01-01`).
    since: String,
}

/// How many events were queued again.
#[derive(Serialize, ToSchema)]
struct Requeued {
    queued: usize,
}

/// Queues again every event for the endpoint since `since`.
#[utoipa::path(
    operation_id = "replay_webhook",
    tag = "webhooks",
    params(ReplayQuery),
    responses((status = 202, body = Requeued), (status = 404, body = ErrorBody))
)]
#[post("/webhooks/{id}/replay")]
#[tracing::instrument(name = "webhooks.replay", skip_all, fields(webhook_id = %id))]
async fn replay(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: params::Query<ReplayQuery>,
) -> Result<HttpResponse, ApiError> {
    let endpoint = find(&state, id.into_inner()).await?;
    let since = params::timestamp("since", Some(&query.since))?
        .ok_or_else(|| ApiError::bad_request("invalid_query", "`since` is required"))?;
    let event_ids = storage::webhooks::events_for_replay(&state.db, &endpoint, since).await?;
    let queued =
        storage::webhooks::requeue(&state.db, endpoint.id, &event_ids, state.clock.now()).await?;
    state.wake.wake();
    Ok(HttpResponse::Accepted().json(Requeued { queued }))
}

/// Queues the delivery's event again for its endpoint.
#[utoipa::path(
    operation_id = "redeliver_webhook_delivery",
    tag = "webhooks",
    responses((status = 202, body = Queued), (status = 404, body = ErrorBody))
)]
#[post("/webhook-deliveries/{id}/redeliver")]
#[tracing::instrument(name = "webhooks.redeliver", skip_all, fields(delivery_id = %id))]
async fn redeliver(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let delivery = storage::webhooks::delivery(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook delivery", id))?;
    storage::webhooks::requeue(
        &state.db,
        delivery.webhook_id,
        std::slice::from_ref(&delivery.event_id),
        state.clock.now(),
    )
    .await?;
    state.wake.wake();
    Ok(HttpResponse::Accepted().json(Queued {
        event_id: delivery.event_id,
    }))
}
