//! `/api/accounts`: the fleet's Telegram accounts. No secret is ever returned.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use uuid::Uuid;

use super::{error::ApiError, params, views::AccountView};
use crate::state::AppState;
use tgwatch_store::page::Order;
use tgwatch_store::{
    self as storage,
    accounts::{AccountFilter, AccountPatch, AccountStatus, NewAccount},
    entities::accounts,
};

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/accounts", web::get().to(list))
        .route("/accounts", web::post().to(create))
        .route("/accounts/{id}", web::get().to(get))
        .route("/accounts/{id}", web::patch().to(update))
        .route("/accounts/{id}", web::delete().to(delete));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountQuery {
    status: Option<AccountStatus>,
    is_active: Option<bool>,
    is_authorized: Option<bool>,
    telegram_user_id: Option<i64>,
    limit: Option<u64>,
    cursor: Option<Uuid>,
    order: Option<Order>,
}

async fn list(
    state: web::Data<AppState>,
    query: params::Query<AccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let filter = AccountFilter {
        status: query.status,
        is_active: query.is_active,
        is_authorized: query.is_authorized,
        telegram_user_id: query.telegram_user_id,
    };
    let page = storage::accounts::list(
        &state.db,
        filter,
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(AccountView::from)))
}

async fn create(
    state: web::Data<AppState>,
    body: params::Json<NewAccount>,
) -> Result<HttpResponse, ApiError> {
    let account = state
        .tracking()
        .add_account(body.into_inner(), state.clock.now())
        .await?;
    Ok(HttpResponse::Created().json(AccountView::from(account)))
}

async fn find(state: &AppState, id: Uuid) -> Result<accounts::Model, ApiError> {
    storage::accounts::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", id))
}

async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let account = find(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

async fn update(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<AccountPatch>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    let account = state
        .tracking()
        .update_account(existing, body.into_inner(), state.clock.now())
        .await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

async fn delete(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    state.tracking().remove_account(existing).await?;
    Ok(HttpResponse::NoContent().finish())
}
