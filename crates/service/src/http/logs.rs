//! `GET /api/logs`: what the service recorded for operators (bans, FLOOD_WAITs, config problems).

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::{error::ApiError, params, views::LogView};
use crate::state::AppState;
use tgwatch_store::page::Order;
use tgwatch_store::{self as storage, LogLevel, logs::LogFilter};

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/logs", web::get().to(list));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    level: Option<LogLevel>,
    account_id: Option<Uuid>,
    channel_id: Option<Uuid>,
    source: Option<String>,
    since: Option<String>,
    limit: Option<u64>,
    cursor: Option<Uuid>,
    order: Option<Order>,
}

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
