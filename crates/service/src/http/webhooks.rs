//! `/api/webhooks`: endpoints, their deliveries, tests, redelivery and replay.

use actix_web::{HttpResponse, http::StatusCode, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{error::ApiError, params};
use crate::{
    state::AppState,
    webhooks::endpoints::{self, EndpointError, EndpointPatch, EndpointRequest},
};
use tgwatch_core::config::Origin;
use tgwatch_store::page::Order;
use tgwatch_store::webhooks::EndpointStatus;
use tgwatch_store::{
    self as storage,
    entities::{webhook_deliveries, webhooks},
    webhooks::DeliveryFilter,
};

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/webhooks", web::get().to(list))
        .route("/webhooks", web::post().to(create))
        .route("/webhooks/{id}", web::get().to(get))
        .route("/webhooks/{id}", web::patch().to(update))
        .route("/webhooks/{id}", web::delete().to(delete))
        .route(
            "/webhooks/{id}/rotate-secret",
            web::post().to(rotate_secret),
        )
        .route("/webhooks/{id}/deliveries", web::get().to(deliveries))
        .route("/webhooks/{id}/test", web::post().to(test))
        .route("/webhooks/{id}/replay", web::post().to(replay))
        .route(
            "/webhook-deliveries/{id}/redeliver",
            web::post().to(redeliver),
        );
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

#[derive(Serialize)]
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

#[derive(Serialize)]
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
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum WebhookStatus {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<WebhookStatus>,
    limit: Option<u64>,
    cursor: Option<Uuid>,
    order: Option<Order>,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWebhookBody {
    url: String,
    #[serde(default = "all")]
    event_types: Vec<String>,
    tracked_user_id: Option<Uuid>,
    name: Option<String>,
}

fn all() -> Vec<String> {
    vec!["all".to_owned()]
}

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
    let mut view = json!(WebhookView::from(row));
    // Shown this once: it is what consumers verify signatures with.
    view["secret"] = json!(secret.expose());
    Ok(HttpResponse::Created().json(view))
}

async fn find(state: &AppState, id: Uuid) -> Result<webhooks::Model, ApiError> {
    storage::webhooks::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook", id))
}

async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(WebhookView::from(find(&state, id.into_inner()).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    url: Option<String>,
    event_types: Option<Vec<String>>,
    status: Option<String>,
}

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

async fn delete(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    storage::webhooks::delete(&state.db, existing.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate_secret(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    let (row, secret) =
        endpoints::rotate_secret(&state.db, &state.webhooks, existing, state.clock.now()).await?;
    let mut view = json!(WebhookView::from(row));
    view["secret"] = json!(secret.expose());
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    success: Option<bool>,
    since: Option<String>,
    limit: Option<u64>,
    cursor: Option<Uuid>,
    order: Option<Order>,
}

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

async fn test(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let endpoint = find(&state, id.into_inner()).await?;
    let event =
        storage::webhooks::queue_test_event(&state.db, &endpoint, state.clock.now()).await?;
    state.metrics.events_written([event.event_type]);
    state.wake.wake();
    Ok(HttpResponse::Accepted().json(json!({ "event_id": event.id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayQuery {
    since: String,
}

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
    Ok(HttpResponse::Accepted().json(json!({ "queued": queued })))
}

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
    Ok(HttpResponse::Accepted().json(json!({ "event_id": delivery.event_id })))
}
