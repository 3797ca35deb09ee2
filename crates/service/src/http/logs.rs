//! `GET /api/logs`: what the service recorded for operators (bans, FLOOD_WAITs, config problems).

use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{error::ApiError, params, views::LogView};
use crate::state::AppState;
use tgwatch_store::page::{Order, Page};
use tgwatch_store::{self as storage, LogLevel, logs::LogFilter};

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config.service(list);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    level: Option<LogLevel>,
    account_id: Option<Uuid>,
    channel_id: Option<Uuid>,
    source: Option<String>,
    /// RFC 3339 (`2026-01-01T12:00:00Z`) or a date (`2026-01-01`).
    since: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// What the service recorded for operators, a page at a time.
#[utoipa::path(
    operation_id = "list_logs",
    tag = "logs",
    params(LogQuery),
    responses((status = 200, body = Page<LogView>))
)]
#[get("/logs")]
#[tracing::instrument(name = "logs.list", skip_all)]
async fn list(
    state: web::Data<AppState>,
    query: params::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let filter = LogFilter {
        level: query.level,
        account_id: query.account_id,
        channel_id: query.channel_id,
        source: query.source,
        since: params::timestamp("since", query.since.as_deref())?,
    };
    let page = storage::logs::list(
        &state.db,
        filter,
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(LogView::from)))
}
