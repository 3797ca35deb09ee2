//! `/api/accounts`: the fleet's Telegram accounts. No secret is ever returned.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
    views::AccountView,
};
use crate::state::AppState;
use tgwatch_store::page::{Order, Page};
use tgwatch_store::{
    self as storage,
    accounts::{AccountFilter, AccountPatch, AccountStatus, NewAccount},
    entities::accounts,
};

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(list)
        .service(create)
        .service(get)
        .service(replace)
        .service(update)
        .service(delete);
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AccountQuery {
    status: Option<AccountStatus>,
    is_active: Option<bool>,
    is_authorized: Option<bool>,
    telegram_user_id: Option<i64>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// The accounts, a page at a time.
#[utoipa::path(
    operation_id = "list_accounts",
    tag = "accounts",
    params(AccountQuery),
    responses((status = 200, body = Page<AccountView>))
)]
#[get("/accounts")]
#[tracing::instrument(name = "accounts.list", skip_all)]
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

/// Adds an account (log it in afterwards: `/api/accounts/{id}/login/...`).
#[utoipa::path(
    operation_id = "create_account",
    tag = "accounts",
    request_body = NewAccount,
    responses(
        (status = 201, body = AccountView),
        (status = 409, description = "The label or Telegram user id is taken (`details.existing`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`details.field`)", body = ErrorBody),
    )
)]
#[post("/accounts")]
#[tracing::instrument(name = "accounts.create", skip_all)]
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

pub(super) async fn find(state: &AppState, id: Uuid) -> Result<accounts::Model, ApiError> {
    storage::accounts::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::not_found("account", id))
}

#[utoipa::path(
    operation_id = "get_account",
    tag = "accounts",
    responses((status = 200, body = AccountView), (status = 404, body = ErrorBody))
)]
#[get("/accounts/{id}")]
#[tracing::instrument(name = "accounts.get", skip_all, fields(account_id = %id))]
async fn get(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let account = find(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

#[utoipa::path(
    operation_id = "update_account",
    tag = "accounts",
    request_body = AccountPatch,
    responses(
        (status = 200, body = AccountView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The label or Telegram user id is taken (`details.existing`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`details.field`)", body = ErrorBody),
    )
)]
#[patch("/accounts/{id}")]
#[tracing::instrument(name = "accounts.update", skip_all, fields(account_id = %id))]
async fn update(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<AccountPatch>,
) -> Result<HttpResponse, ApiError> {
    let account = change(&state, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// The same as PATCH (seed 002 has both): the fields given replace the stored ones.
#[utoipa::path(
    operation_id = "replace_account",
    tag = "accounts",
    request_body = AccountPatch,
    responses(
        (status = 200, body = AccountView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The label or Telegram user id is taken (`details.existing`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`details.field`)", body = ErrorBody),
    )
)]
#[put("/accounts/{id}")]
async fn replace(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<AccountPatch>,
) -> Result<HttpResponse, ApiError> {
    let account = change(&state, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// Applies a change to an account (the native PATCH and PUT, and seed 002's tracker accounts
/// and settings).
pub(super) async fn change(
    state: &AppState,
    id: Uuid,
    patch: AccountPatch,
) -> Result<accounts::Model, ApiError> {
    let existing = find(state, id).await?;
    Ok(state
        .tracking()
        .update_account(existing, patch, state.clock.now())
        .await?)
}

/// Removes the account (its tracked users wait, unpolled, until moved to another account).
#[utoipa::path(
    operation_id = "delete_account",
    tag = "accounts",
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody))
)]
#[delete("/accounts/{id}")]
#[tracing::instrument(name = "accounts.delete", skip_all, fields(account_id = %id))]
async fn delete(state: web::Data<AppState>, id: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, id.into_inner()).await?;
    state.tracking().remove_account(existing).await?;
    Ok(HttpResponse::NoContent().finish())
}
