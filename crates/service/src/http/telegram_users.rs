//! `/api/telegram-users`: the people who talk to the bot, their roles and permissions (seed 002
//! `TelegramUser`). `{id}` is the row's id or the Telegram user id.

use actix_web::{HttpResponse, delete, get, http::StatusCode, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    error::{ApiError, ErrorBody},
    params,
};
use crate::state::AppState;
use tgwatch_core::roles::{PermissionsError, Role, effective_role, normalize_permissions};
use tgwatch_store::page::{Order, Page};
use tgwatch_store::{
    self as storage,
    entities::telegram_users,
    telegram_users::{NewTelegramUser, TelegramUserFilter, TelegramUserPatch},
};
use tgwatch_telegram::Username;

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(list)
        .service(create)
        .service(get)
        .service(replace)
        .service(update)
        .service(delete);
}

#[derive(Serialize, ToSchema)]
pub(super) struct TelegramUserView {
    id: Uuid,
    telegram_user_id: i64,
    username: Option<String>,
    first_name: Option<String>,
    /// As stored.
    role: Role,
    /// What applies: `admin` for the ids in `bot.admin_ids`, whatever is stored.
    effective_role: Role,
    permissions: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TelegramUserView {
    pub(super) fn new(row: telegram_users::Model, admin_ids: &[i64]) -> TelegramUserView {
        TelegramUserView {
            id: row.id,
            telegram_user_id: row.telegram_user_id,
            effective_role: effective_role(row.telegram_user_id, Some(row.role), admin_ids),
            permissions: storage::telegram_users::permissions(&row),
            username: row.username,
            first_name: row.first_name,
            role: row.role,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

pub(super) fn role(value: &str) -> Result<Role, ApiError> {
    Role::parse(value).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("`role`: `{value}` is not one of banned, user, vip, moderator, admin"),
        )
        .with_details(json!({ "field": "role" }))
    })
}

/// Telegram's longest first name.
const MAX_FIRST_NAME_CHARS: usize = 64;
/// Telegram's user ids are positive 53-bit numbers.
const MAX_TELEGRAM_USER_ID: i64 = (1 << 53) - 1;

/// A username as Telegram allows it (stored without the `@`).
fn username(value: Option<String>) -> Result<Option<String>, ApiError> {
    value
        .map(|name| Username::parse(&name).map(String::from))
        .transpose()
        .map_err(ApiError::from)
}

fn first_name(value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(name) if name.trim().is_empty() || name.chars().count() > MAX_FIRST_NAME_CHARS => {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("`first_name` must be 1 to {MAX_FIRST_NAME_CHARS} characters"),
            )
            .with_details(json!({ "field": "first_name" })))
        }
        other => Ok(other),
    }
}

fn already_exists(existing: telegram_users::Model, admin_ids: &[i64]) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "already_exists",
        format!("telegram user {} exists already", existing.telegram_user_id),
    )
    .with_details(json!({
        "field": "telegram_user_id",
        "existing": TelegramUserView::new(existing, admin_ids),
    }))
}

fn permissions(values: Vec<String>) -> Result<Vec<String>, ApiError> {
    normalize_permissions(values).map_err(|error: PermissionsError| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            format!("`permissions`: {error}"),
        )
        .with_details(json!({ "field": "permissions" }))
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// banned, user, vip, moderator or admin.
    role: Option<String>,
    telegram_user_id: Option<i64>,
    /// Items per page, 1 to 1000 (default 100).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
    order: Option<Order>,
}

/// The people known to the bot, a page at a time.
#[utoipa::path(
    operation_id = "list_telegram_users",
    tag = "telegram-users",
    params(ListQuery),
    responses((status = 200, body = Page<TelegramUserView>))
)]
#[get("/telegram-users")]
#[tracing::instrument(name = "telegram_users.list", skip_all)]
async fn list(
    state: web::Data<AppState>,
    query: params::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let filter = TelegramUserFilter {
        role: query.role.as_deref().map(role).transpose()?,
        telegram_user_id: query.telegram_user_id,
    };
    let page = storage::telegram_users::list(
        &state.db,
        filter,
        params::limit(query.limit)?,
        query.cursor,
        query.order.unwrap_or_default(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page.map(|row| TelegramUserView::new(row, &state.bot_admin_ids))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewBody {
    /// 1 to 2^53 - 1.
    pub(super) telegram_user_id: i64,
    pub(super) username: Option<String>,
    pub(super) first_name: Option<String>,
    /// banned, user (default), vip, moderator or admin.
    pub(super) role: Option<String>,
    #[serde(default)]
    pub(super) permissions: Vec<String>,
}

#[utoipa::path(
    operation_id = "create_telegram_user",
    tag = "telegram-users",
    request_body = NewBody,
    responses(
        (status = 201, body = TelegramUserView),
        (status = 409, description = "Known already (`details.existing`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`details.field`)", body = ErrorBody),
    )
)]
#[post("/telegram-users")]
#[tracing::instrument(name = "telegram_users.create", skip_all)]
async fn create(
    state: web::Data<AppState>,
    body: params::Json<NewBody>,
) -> Result<HttpResponse, ApiError> {
    let row = add(&state, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(TelegramUserView::new(row, &state.bot_admin_ids)))
}

/// Stores a person the bot should know (the native POST and seed 002's).
pub(super) async fn add(
    state: &AppState,
    body: NewBody,
) -> Result<telegram_users::Model, ApiError> {
    if !(1..=MAX_TELEGRAM_USER_ID).contains(&body.telegram_user_id) {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!("`telegram_user_id` must be a Telegram user id: 1 to {MAX_TELEGRAM_USER_ID}"),
        ));
    }
    let new = NewTelegramUser {
        telegram_user_id: body.telegram_user_id,
        username: username(body.username)?,
        first_name: first_name(body.first_name)?,
        role: body
            .role
            .as_deref()
            .map(role)
            .transpose()?
            .unwrap_or(Role::User),
        permissions: permissions(body.permissions)?,
    };
    let telegram_user_id = new.telegram_user_id;
    if let Some(existing) = storage::telegram_users::find(&state.db, telegram_user_id).await? {
        return Err(already_exists(existing, &state.bot_admin_ids));
    }
    match storage::telegram_users::create(&state.db, new, state.clock.now()).await {
        Ok(row) => Ok(row),
        // Stored by another request (or the bot) between the check and the write.
        Err(error) if error.unique_violation().is_some() => {
            let existing = storage::telegram_users::find(&state.db, telegram_user_id)
                .await?
                .ok_or(error)?;
            Err(already_exists(existing, &state.bot_admin_ids))
        }
        Err(error) => Err(error.into()),
    }
}

/// The row named by `{id}`: a UUID, or a Telegram user id (as seed 002's API takes it).
pub(super) async fn find(state: &AppState, id: &str) -> Result<telegram_users::Model, ApiError> {
    let found = match (Uuid::parse_str(id), id.parse::<i64>()) {
        (Ok(uuid), _) => storage::telegram_users::get(&state.db, uuid).await?,
        (_, Ok(telegram_user_id)) => {
            storage::telegram_users::find(&state.db, telegram_user_id).await?
        }
        _ => None,
    };
    found.ok_or_else(|| ApiError::not_found("telegram user", id))
}

#[utoipa::path(
    operation_id = "get_telegram_user",
    tag = "telegram-users",
    params(("id" = String, Path, description = "The row's UUID or the Telegram user id")),
    responses((status = 200, body = TelegramUserView), (status = 404, body = ErrorBody))
)]
#[get("/telegram-users/{id}")]
#[tracing::instrument(name = "telegram_users.get", skip_all, fields(telegram_user = %id))]
async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let row = find(&state, &id).await?;
    Ok(HttpResponse::Ok().json(TelegramUserView::new(row, &state.bot_admin_ids)))
}

/// A field left out is left as it is; `null` clears `username` or `first_name`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PatchBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(super) username: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub(super) first_name: Option<Option<String>>,
    pub(super) role: Option<String>,
    pub(super) permissions: Option<Vec<String>>,
}

/// Tells `"field": null` (clear it) from a missing field (leave it).
pub(super) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[utoipa::path(
    operation_id = "update_telegram_user",
    tag = "telegram-users",
    params(("id" = String, Path, description = "The row's UUID or the Telegram user id")),
    request_body = PatchBody,
    responses(
        (status = 200, body = TelegramUserView),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A field is invalid (`details.field`)", body = ErrorBody),
    )
)]
#[patch("/telegram-users/{id}")]
#[tracing::instrument(name = "telegram_users.update", skip_all, fields(telegram_user = %id))]
async fn update(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: params::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, &id).await?;
    let row = change(&state, existing, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TelegramUserView::new(row, &state.bot_admin_ids)))
}

/// Applies a change to a person the bot knows (the native PATCH and seed 002's PUT and PATCH).
pub(super) async fn change(
    state: &AppState,
    existing: telegram_users::Model,
    body: PatchBody,
) -> Result<telegram_users::Model, ApiError> {
    let patch = TelegramUserPatch {
        username: body.username.map(username).transpose()?,
        first_name: body.first_name.map(first_name).transpose()?,
        role: body.role.as_deref().map(role).transpose()?,
        permissions: body.permissions.map(permissions).transpose()?,
    };
    Ok(storage::telegram_users::update(&state.db, existing, patch, state.clock.now()).await?)
}

/// The same as PATCH (seed 002 has both).
#[utoipa::path(
    operation_id = "replace_telegram_user",
    tag = "telegram-users",
    params(("id" = String, Path, description = "The row's UUID or the Telegram user id")),
    request_body = PatchBody,
    responses(
        (status = 200, body = TelegramUserView),
        (status = 404, body = ErrorBody),
        (status = 422, description = "A field is invalid (`details.field`)", body = ErrorBody),
    )
)]
#[put("/telegram-users/{id}")]
async fn replace(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: params::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, &id).await?;
    let row = change(&state, existing, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TelegramUserView::new(row, &state.bot_admin_ids)))
}

#[utoipa::path(
    operation_id = "delete_telegram_user",
    tag = "telegram-users",
    params(("id" = String, Path, description = "The row's UUID or the Telegram user id")),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody))
)]
#[delete("/telegram-users/{id}")]
#[tracing::instrument(name = "telegram_users.delete", skip_all, fields(telegram_user = %id))]
async fn delete(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let existing = find(&state, &id).await?;
    storage::telegram_users::delete(&state.db, existing.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
