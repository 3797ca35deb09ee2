//! Seed 002 (SeeOnline, Django REST): `/tracker-accounts/`, `/tracker-settings/`,
//! `/telegram-users/`, `/tracked-users/` and `/online-statuses/` at the root, with the seed's
//! field names and filters. Lists are plain JSON arrays (DRF without pagination); ids are
//! tgwatch's UUIDs, except telegram users, addressed by their Telegram id as the seed does.
//!
//! The mapping: a tracker account is an account; its tracker settings are the same account's
//! phone, session and capacity (`id` and `tracker_account_id` are the account's id); a tracked
//! user's `tracker_account_id` is its `account_id`; an online status is an observation, its
//! `created_at` the observation time. A person whose `visible_online` is false is left out of the
//! online-statuses list.

use std::sync::Arc;

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    super::{
        accounts::{self as native_accounts, find as account},
        auth::Admin,
        error::{ApiError, ErrorBody},
        login::{self, check_api_hash},
        online_statuses::{self, NewStatus, StatusCorrection, StatusFilter},
        params,
        telegram_users::{self, NewBody, PatchBody, TelegramUserView},
        tracked_users,
    },
    every_page,
};
use crate::{
    state::AppState,
    tracking::{TrackRequest, TrackedUserChange},
};
use tgwatch_core::{config::Origin, presence::StatusKind};
use tgwatch_store::{
    self as storage,
    accounts::{AccountFilter, AccountPatch, AccountStatus, NewAccount},
    entities::{accounts, status_checks, tracked_users as tracked_rows},
    page::Order,
    telegram_users::TelegramUserFilter,
    tracked_users::TrackedUserFilter,
};
use tgwatch_telegram::{Username, logins::Logins};

pub fn routes(config: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    config
        .service(list_tracker_accounts)
        .service(create_tracker_account)
        .service(get_tracker_account)
        .service(replace_tracker_account)
        .service(update_tracker_account)
        .service(delete_tracker_account)
        .service(list_tracker_settings)
        .service(create_tracker_setting)
        .service(get_tracker_setting)
        .service(replace_tracker_setting)
        .service(update_tracker_setting)
        .service(delete_tracker_setting)
        .service(list_telegram_users)
        .service(create_telegram_user)
        .service(get_telegram_user)
        .service(replace_telegram_user)
        .service(update_telegram_user)
        .service(delete_telegram_user)
        .service(list_tracked_users)
        .service(create_tracked_user)
        .service(get_tracked_user)
        .service(replace_tracked_user)
        .service(update_tracked_user)
        .service(delete_tracked_user)
        .service(list_online_statuses)
        .service(create_online_status)
        .service(get_online_status)
        .service(replace_online_status)
        .service(update_online_status)
        .service(delete_online_status);
}

/// Every account the filter keeps, oldest first.
async fn accounts_where(
    state: &AppState,
    filter: impl Fn() -> AccountFilter,
) -> Result<Vec<accounts::Model>, ApiError> {
    every_page(|limit, cursor| {
        storage::accounts::list(&state.db, filter(), limit, cursor, Order::Asc)
    })
    .await
}

fn status_of(is_active: bool) -> AccountStatus {
    if is_active {
        AccountStatus::Active
    } else {
        AccountStatus::Inactive
    }
}

// ---- /tracker-accounts/ ----------------------------------------------------------------------

/// Seed 002's `TrackerAccount`: an account of the fleet.
#[derive(Serialize, ToSchema)]
struct TrackerAccount {
    id: Uuid,
    telegram_user_id: Option<i64>,
    api_id: Option<i32>,
    /// The account works for the fleet (status `active`).
    is_active: bool,
    /// The account is logged in.
    is_auth: bool,
    label: String,
    phone_number: Option<String>,
    /// tgwatch's status: active, banned, limited or inactive.
    status: AccountStatus,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<accounts::Model> for TrackerAccount {
    fn from(row: accounts::Model) -> Self {
        TrackerAccount {
            id: row.id,
            telegram_user_id: row.telegram_user_id,
            api_id: row.api_id,
            is_active: row.status == AccountStatus::Active,
            is_auth: row.is_authorized,
            label: row.label,
            phone_number: row.phone,
            status: row.status,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TrackerAccountQuery {
    id: Option<Uuid>,
    telegram_user_id: Option<i64>,
    is_active: Option<bool>,
    is_auth: Option<bool>,
}

/// The tracker accounts (a JSON array).
#[utoipa::path(
    operation_id = "seed002_list_tracker_accounts",
    tag = "seed-002",
    params(TrackerAccountQuery),
    responses((status = 200, body = Vec<TrackerAccount>))
)]
#[get("/tracker-accounts")]
async fn list_tracker_accounts(
    _admin: Admin,
    state: web::Data<AppState>,
    query: params::Query<TrackerAccountQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let rows = accounts_where(&state, || AccountFilter {
        is_active: query.is_active,
        is_authorized: query.is_auth,
        telegram_user_id: query.telegram_user_id,
        ..AccountFilter::default()
    })
    .await?;
    let items: Vec<TrackerAccount> = rows
        .into_iter()
        .filter(|row| query.id.is_none_or(|id| row.id == id))
        .map(TrackerAccount::from)
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

/// A new tracker account. Without a `label` it gets one made from its phone number or Telegram
/// id. Log it in afterwards (`/api/accounts/{id}/login/...` or `/telegram/auth/...`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTrackerAccount {
    label: Option<String>,
    telegram_user_id: Option<i64>,
    api_id: Option<i32>,
    phone_number: Option<String>,
    /// Write-only: kept sealed for the account's logins (never shown again).
    #[schema(write_only)]
    api_hash: Option<String>,
    /// `false` creates it inactive (it does not connect).
    is_active: Option<bool>,
}

/// The label of a tracker account created without one: its phone number, else its Telegram id.
fn default_label(phone: Option<&str>, telegram_user_id: Option<i64>) -> Option<String> {
    phone
        .map(str::to_owned)
        .or_else(|| telegram_user_id.map(|id| id.to_string()))
}

#[utoipa::path(
    operation_id = "seed002_create_tracker_account",
    tag = "seed-002",
    request_body = NewTrackerAccount,
    responses(
        (status = 201, body = TrackerAccount),
        (status = 400, description = "No `label`, `phone_number` or `telegram_user_id` to name it by", body = ErrorBody),
        (status = 409, description = "The label or Telegram user id is taken (`details.existing`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`details.field`)", body = ErrorBody),
    )
)]
#[post("/tracker-accounts")]
async fn create_tracker_account(
    _admin: Admin,
    state: web::Data<AppState>,
    body: params::Json<NewTrackerAccount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let api_hash = api_hash_to_keep(&state, body.api_hash)?;
    let label = body
        .label
        .or_else(|| default_label(body.phone_number.as_deref(), body.telegram_user_id))
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_field",
                "give `label`, `phone_number` or `telegram_user_id` (the label is made from them)",
            )
        })?;
    let new = NewAccount {
        label,
        phone: body.phone_number,
        username: None,
        telegram_user_id: body.telegram_user_id,
        api_id: body.api_id,
        max_targets: None,
        max_channels: None,
        status: body.is_active.map(status_of),
    };
    let row = state.tracking().add_account(new, state.clock.now()).await?;
    if let Some((logins, api_hash)) = api_hash {
        logins.keep_api_hash(row.id, &api_hash).await?;
    }
    Ok(HttpResponse::Created().json(TrackerAccount::from(row)))
}

/// A seed client's `api_hash`, checked, with the logins that keep it (it is only used by
/// MTProto logins: a scripted Telegram refuses it with a 409).
fn api_hash_to_keep(
    state: &AppState,
    api_hash: Option<String>,
) -> Result<Option<(&Arc<Logins>, String)>, ApiError> {
    check_api_hash(api_hash.as_deref())?;
    api_hash
        .map(|api_hash| Ok((login::logins(state)?, api_hash)))
        .transpose()
}

#[utoipa::path(
    operation_id = "seed002_get_tracker_account",
    tag = "seed-002",
    responses((status = 200, body = TrackerAccount), (status = 404, body = ErrorBody))
)]
#[get("/tracker-accounts/{id}")]
async fn get_tracker_account(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = account(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TrackerAccount::from(row)))
}

/// A field left out is left as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TrackerAccountChange {
    label: Option<String>,
    telegram_user_id: Option<i64>,
    api_id: Option<i32>,
    phone_number: Option<String>,
    /// Write-only: kept sealed for the account's logins (never shown again).
    #[schema(write_only)]
    api_hash: Option<String>,
    is_active: Option<bool>,
}

async fn change_tracker_account(
    state: &AppState,
    id: Uuid,
    body: TrackerAccountChange,
) -> Result<HttpResponse, ApiError> {
    let api_hash = api_hash_to_keep(state, body.api_hash)?;
    let patch = AccountPatch {
        label: body.label,
        phone: body.phone_number,
        telegram_user_id: body.telegram_user_id,
        api_id: body.api_id,
        status: body.is_active.map(status_of),
        ..AccountPatch::default()
    };
    let row = native_accounts::change(state, id, patch).await?;
    if let Some((logins, api_hash)) = api_hash {
        logins.keep_api_hash(row.id, &api_hash).await?;
    }
    Ok(HttpResponse::Ok().json(TrackerAccount::from(row)))
}

#[utoipa::path(
    operation_id = "seed002_replace_tracker_account",
    tag = "seed-002",
    request_body = TrackerAccountChange,
    responses((status = 200, body = TrackerAccount), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[put("/tracker-accounts/{id}")]
async fn replace_tracker_account(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<TrackerAccountChange>,
) -> Result<HttpResponse, ApiError> {
    change_tracker_account(&state, id.into_inner(), body.into_inner()).await
}

#[utoipa::path(
    operation_id = "seed002_update_tracker_account",
    tag = "seed-002",
    request_body = TrackerAccountChange,
    responses((status = 200, body = TrackerAccount), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[patch("/tracker-accounts/{id}")]
async fn update_tracker_account(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<TrackerAccountChange>,
) -> Result<HttpResponse, ApiError> {
    change_tracker_account(&state, id.into_inner(), body.into_inner()).await
}

/// Removes the account (its tracked users wait, unpolled, until moved to another account).
#[utoipa::path(
    operation_id = "seed002_delete_tracker_account",
    tag = "seed-002",
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody))
)]
#[delete("/tracker-accounts/{id}")]
async fn delete_tracker_account(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let existing = account(&state, id.into_inner()).await?;
    state.tracking().remove_account(existing).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- /tracker-settings/ ----------------------------------------------------------------------

/// Seed 002's `TrackerSetting`: an account's phone, session and capacity. The session itself is
/// never shown, only whether there is one.
#[derive(Serialize, ToSchema)]
struct TrackerSetting {
    /// The account's id (one settings record per account).
    id: Uuid,
    tracker_account_id: Uuid,
    phone_number: Option<String>,
    /// A logged-in session is stored (sealed) for the account.
    has_session: bool,
    /// `max_targets`: people this account may track.
    max_users: i32,
    /// People it tracks now.
    current_users: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<accounts::Model> for TrackerSetting {
    fn from(row: accounts::Model) -> Self {
        TrackerSetting {
            id: row.id,
            tracker_account_id: row.id,
            phone_number: row.phone,
            has_session: row.is_authorized,
            max_users: row.max_targets,
            current_users: row.targets_count,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TrackerSettingQuery {
    phone_number: Option<String>,
    /// The Telegram user id of the account.
    #[serde(rename = "tracker_account__telegram_user_id")]
    account_telegram_user_id: Option<i64>,
}

/// The accounts' settings (a JSON array).
#[utoipa::path(
    operation_id = "seed002_list_tracker_settings",
    tag = "seed-002",
    params(TrackerSettingQuery),
    responses((status = 200, body = Vec<TrackerSetting>))
)]
#[get("/tracker-settings")]
async fn list_tracker_settings(
    _admin: Admin,
    state: web::Data<AppState>,
    query: params::Query<TrackerSettingQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let rows = accounts_where(&state, || AccountFilter {
        telegram_user_id: query.account_telegram_user_id,
        ..AccountFilter::default()
    })
    .await?;
    let items: Vec<TrackerSetting> = rows
        .into_iter()
        .filter(|row| {
            query
                .phone_number
                .as_deref()
                .is_none_or(|phone| row.phone.as_deref() == Some(phone))
        })
        .map(TrackerSetting::from)
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

/// Settings for an account: its phone number and how many people it may track.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTrackerSetting {
    tracker_account_id: Uuid,
    phone_number: Option<String>,
    max_users: Option<i32>,
}

/// A field left out is left as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TrackerSettingChange {
    phone_number: Option<String>,
    max_users: Option<i32>,
}

async fn set_settings(
    state: &AppState,
    id: Uuid,
    change: TrackerSettingChange,
) -> Result<accounts::Model, ApiError> {
    let patch = AccountPatch {
        phone: change.phone_number,
        max_targets: change.max_users,
        ..AccountPatch::default()
    };
    native_accounts::change(state, id, patch).await
}

/// Sets an account's settings (every account has one settings record: this fills it in).
#[utoipa::path(
    operation_id = "seed002_create_tracker_setting",
    tag = "seed-002",
    request_body = NewTrackerSetting,
    responses((status = 201, body = TrackerSetting), (status = 404, description = "No such tracker account", body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[post("/tracker-settings")]
async fn create_tracker_setting(
    _admin: Admin,
    state: web::Data<AppState>,
    body: params::Json<NewTrackerSetting>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let change = TrackerSettingChange {
        phone_number: body.phone_number,
        max_users: body.max_users,
    };
    let row = set_settings(&state, body.tracker_account_id, change).await?;
    Ok(HttpResponse::Created().json(TrackerSetting::from(row)))
}

#[utoipa::path(
    operation_id = "seed002_get_tracker_setting",
    tag = "seed-002",
    responses((status = 200, body = TrackerSetting), (status = 404, body = ErrorBody))
)]
#[get("/tracker-settings/{id}")]
async fn get_tracker_setting(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = account(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TrackerSetting::from(row)))
}

#[utoipa::path(
    operation_id = "seed002_replace_tracker_setting",
    tag = "seed-002",
    request_body = TrackerSettingChange,
    responses((status = 200, body = TrackerSetting), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[put("/tracker-settings/{id}")]
async fn replace_tracker_setting(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<TrackerSettingChange>,
) -> Result<HttpResponse, ApiError> {
    let row = set_settings(&state, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TrackerSetting::from(row)))
}

#[utoipa::path(
    operation_id = "seed002_update_tracker_setting",
    tag = "seed-002",
    request_body = TrackerSettingChange,
    responses((status = 200, body = TrackerSetting), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[patch("/tracker-settings/{id}")]
async fn update_tracker_setting(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<TrackerSettingChange>,
) -> Result<HttpResponse, ApiError> {
    let row = set_settings(&state, id.into_inner(), body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(TrackerSetting::from(row)))
}

/// Resets the account's session (it must log in again) and forgets its phone number; the
/// account stays.
#[utoipa::path(
    operation_id = "seed002_delete_tracker_setting",
    tag = "seed-002",
    responses((status = 204, description = "Session and phone forgotten"), (status = 404, body = ErrorBody))
)]
#[delete("/tracker-settings/{id}")]
async fn delete_tracker_setting(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let existing = account(&state, id.into_inner()).await?;
    // A scripted Telegram (telegram.scenario) keeps no sessions: there is none to forget.
    if let Some(logins) = &state.logins {
        logins.reset(existing.id).await?;
    }
    let id = existing.id;
    match storage::accounts::clear_phone(&state.db, existing, state.clock.now()).await? {
        Some(_) => Ok(HttpResponse::NoContent().finish()),
        None => Err(ApiError::not_found("tracker account", id)),
    }
}

// ---- /telegram-users/ ------------------------------------------------------------------------

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TelegramUserQuery {
    id: Option<Uuid>,
    telegram_user_id: Option<i64>,
    /// banned, user, vip, moderator or admin.
    role: Option<String>,
}

/// The people the bot knows (a JSON array).
#[utoipa::path(
    operation_id = "seed002_list_telegram_users",
    tag = "seed-002",
    params(TelegramUserQuery),
    responses((status = 200, body = Vec<TelegramUserView>))
)]
#[get("/telegram-users")]
async fn list_telegram_users(
    _admin: Admin,
    state: web::Data<AppState>,
    query: params::Query<TelegramUserQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let role = query
        .role
        .as_deref()
        .map(telegram_users::role)
        .transpose()?;
    let rows = every_page(|limit, cursor| {
        let filter = TelegramUserFilter {
            role,
            telegram_user_id: query.telegram_user_id,
        };
        storage::telegram_users::list(&state.db, filter, limit, cursor, Order::Asc)
    })
    .await?;
    let items: Vec<TelegramUserView> = rows
        .into_iter()
        .filter(|row| query.id.is_none_or(|id| row.id == id))
        .map(|row| TelegramUserView::new(row, &state.bot_admin_ids))
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

#[utoipa::path(
    operation_id = "seed002_create_telegram_user",
    tag = "seed-002",
    request_body = NewBody,
    responses(
        (status = 201, body = TelegramUserView),
        (status = 409, description = "Known already (`details.existing`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`details.field`)", body = ErrorBody),
    )
)]
#[post("/telegram-users")]
async fn create_telegram_user(
    _admin: Admin,
    state: web::Data<AppState>,
    body: params::Json<NewBody>,
) -> Result<HttpResponse, ApiError> {
    let row = telegram_users::add(&state, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(TelegramUserView::new(row, &state.bot_admin_ids)))
}

#[utoipa::path(
    operation_id = "seed002_get_telegram_user",
    tag = "seed-002",
    params(("telegram_user_id" = i64, Path, description = "The person's Telegram user id")),
    responses((status = 200, body = TelegramUserView), (status = 404, body = ErrorBody))
)]
#[get("/telegram-users/{telegram_user_id}")]
async fn get_telegram_user(
    _admin: Admin,
    state: web::Data<AppState>,
    telegram_user_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let row = telegram_users::find(&state, &telegram_user_id.to_string()).await?;
    Ok(HttpResponse::Ok().json(TelegramUserView::new(row, &state.bot_admin_ids)))
}

/// A field left out is left as it is; `telegram_user_id`, when sent (a PUT of the whole
/// record), must be the one of the path.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TelegramUserChange {
    telegram_user_id: Option<i64>,
    #[serde(default, deserialize_with = "telegram_users::present")]
    #[schema(value_type = Option<String>)]
    username: Option<Option<String>>,
    #[serde(default, deserialize_with = "telegram_users::present")]
    #[schema(value_type = Option<String>)]
    first_name: Option<Option<String>>,
    /// banned, user, vip, moderator or admin.
    role: Option<String>,
    permissions: Option<Vec<String>>,
}

async fn change_telegram_user(
    state: &AppState,
    telegram_user_id: i64,
    body: TelegramUserChange,
) -> Result<HttpResponse, ApiError> {
    if body
        .telegram_user_id
        .is_some_and(|given| given != telegram_user_id)
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            format!(
                "`telegram_user_id` cannot change: this record is Telegram user {telegram_user_id}"
            ),
        ));
    }
    let existing = telegram_users::find(state, &telegram_user_id.to_string()).await?;
    let patch = PatchBody {
        username: body.username,
        first_name: body.first_name,
        role: body.role,
        permissions: body.permissions,
    };
    let row = telegram_users::change(state, existing, patch).await?;
    Ok(HttpResponse::Ok().json(TelegramUserView::new(row, &state.bot_admin_ids)))
}

#[utoipa::path(
    operation_id = "seed002_replace_telegram_user",
    tag = "seed-002",
    params(("telegram_user_id" = i64, Path, description = "The person's Telegram user id")),
    request_body = TelegramUserChange,
    responses((status = 200, body = TelegramUserView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[put("/telegram-users/{telegram_user_id}")]
async fn replace_telegram_user(
    _admin: Admin,
    state: web::Data<AppState>,
    telegram_user_id: web::Path<i64>,
    body: params::Json<TelegramUserChange>,
) -> Result<HttpResponse, ApiError> {
    change_telegram_user(&state, telegram_user_id.into_inner(), body.into_inner()).await
}

#[utoipa::path(
    operation_id = "seed002_update_telegram_user",
    tag = "seed-002",
    params(("telegram_user_id" = i64, Path, description = "The person's Telegram user id")),
    request_body = TelegramUserChange,
    responses((status = 200, body = TelegramUserView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[patch("/telegram-users/{telegram_user_id}")]
async fn update_telegram_user(
    _admin: Admin,
    state: web::Data<AppState>,
    telegram_user_id: web::Path<i64>,
    body: params::Json<TelegramUserChange>,
) -> Result<HttpResponse, ApiError> {
    change_telegram_user(&state, telegram_user_id.into_inner(), body.into_inner()).await
}

/// Forgets the person and the chats they registered.
#[utoipa::path(
    operation_id = "seed002_delete_telegram_user",
    tag = "seed-002",
    params(("telegram_user_id" = i64, Path, description = "The person's Telegram user id")),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody))
)]
#[delete("/telegram-users/{telegram_user_id}")]
async fn delete_telegram_user(
    _admin: Admin,
    state: web::Data<AppState>,
    telegram_user_id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let existing = telegram_users::find(&state, &telegram_user_id.to_string()).await?;
    storage::telegram_users::delete(&state.db, existing.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- /tracked-users/ -------------------------------------------------------------------------

/// Seed 002's `TrackedUser`: a person tracked through an account.
#[derive(Serialize, ToSchema)]
struct SeedTrackedUser {
    id: Uuid,
    /// The account that polls the person.
    tracker_account_id: Option<Uuid>,
    /// The person's Telegram user id.
    telegram_user_id: Option<i64>,
    username: Option<String>,
    first_name: Option<String>,
    /// `false` hides the person's online state from the bot, the live feed and
    /// `/online-statuses/`.
    visible_online: bool,
    notify: bool,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<tracked_rows::Model> for SeedTrackedUser {
    fn from(row: tracked_rows::Model) -> Self {
        SeedTrackedUser {
            id: row.id,
            tracker_account_id: row.account_id,
            telegram_user_id: row.telegram_user_id,
            username: row.username,
            first_name: row.first_name,
            visible_online: row.visible_online,
            notify: row.notify,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TrackedUserQuery {
    username: Option<String>,
    /// The Telegram user id of the tracking account.
    #[serde(rename = "tracker_account__telegram_user_id")]
    account_telegram_user_id: Option<i64>,
    /// The tracked person's Telegram user id.
    #[serde(rename = "telegram_user__telegram_user_id")]
    person_telegram_user_id: Option<i64>,
}

/// The tracked people (a JSON array).
#[utoipa::path(
    operation_id = "seed002_list_tracked_users",
    tag = "seed-002",
    params(TrackedUserQuery),
    responses((status = 200, body = Vec<SeedTrackedUser>))
)]
#[get("/tracked-users")]
async fn list_tracked_users(
    _admin: Admin,
    state: web::Data<AppState>,
    query: params::Query<TrackedUserQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let username = query.username.as_deref().map(Username::parse).transpose()?;
    let account_id = match query.account_telegram_user_id {
        Some(telegram_user_id) => {
            match storage::accounts::find_by_telegram_user_id(&state.db, telegram_user_id).await? {
                Some(account) => Some(account.id),
                // No such account: no one is tracked through it.
                None => return Ok(HttpResponse::Ok().json(Vec::<SeedTrackedUser>::new())),
            }
        }
        None => None,
    };
    let rows = every_page(|limit, cursor| {
        let filter = TrackedUserFilter {
            username: username.clone(),
            account_id,
            telegram_user_id: query.person_telegram_user_id,
            ..TrackedUserFilter::default()
        };
        storage::tracked_users::list(&state.db, filter, limit, cursor, Order::Asc)
    })
    .await?;
    let items: Vec<SeedTrackedUser> = rows.into_iter().map(SeedTrackedUser::from).collect();
    Ok(HttpResponse::Ok().json(items))
}

/// By `username`, or by `telegram_user_id` (with `access_hash` when known); through
/// `tracker_account_id`, or the least-loaded account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSeedTrackedUser {
    tracker_account_id: Option<Uuid>,
    telegram_user_id: Option<i64>,
    access_hash: Option<i64>,
    username: Option<String>,
    visible_online: Option<bool>,
    notify: Option<bool>,
}

#[utoipa::path(
    operation_id = "seed002_create_tracked_user",
    tag = "seed-002",
    request_body = NewSeedTrackedUser,
    responses(
        (status = 201, body = SeedTrackedUser),
        (status = 409, description = "Tracked already (`details.existing`), or no account can take the person", body = ErrorBody),
        (status = 422, description = "A field is invalid, or no such person", body = ErrorBody),
    )
)]
#[post("/tracked-users")]
async fn create_tracked_user(
    _admin: Admin,
    state: web::Data<AppState>,
    body: params::Json<NewSeedTrackedUser>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let request = TrackRequest {
        username: body.username.as_deref().map(Username::parse).transpose()?,
        telegram_user_id: body.telegram_user_id,
        access_hash: body.access_hash,
        account_id: body.tracker_account_id,
        notify: body.notify,
        visible_online: body.visible_online,
        source: Origin::Api,
    };
    let row = tracked_users::track(&state, request).await?;
    Ok(HttpResponse::Created().json(SeedTrackedUser::from(row)))
}

#[utoipa::path(
    operation_id = "seed002_get_tracked_user",
    tag = "seed-002",
    responses((status = 200, body = SeedTrackedUser), (status = 404, body = ErrorBody))
)]
#[get("/tracked-users/{id}")]
async fn get_tracked_user(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = tracked_users::find(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(SeedTrackedUser::from(row)))
}

/// A field left out is left as it is. A new `username` is resolved again (the same person
/// renamed); `tracker_account_id` moves the person to that account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SeedTrackedUserChange {
    tracker_account_id: Option<Uuid>,
    username: Option<String>,
    visible_online: Option<bool>,
    notify: Option<bool>,
}

async fn change_tracked_user(
    state: &AppState,
    id: Uuid,
    body: SeedTrackedUserChange,
) -> Result<HttpResponse, ApiError> {
    let change = TrackedUserChange {
        notify: body.notify,
        visible_online: body.visible_online,
        account_id: body.tracker_account_id,
        username: body.username.as_deref().map(Username::parse).transpose()?,
    };
    let row = tracked_users::change(state, id, change).await?;
    Ok(HttpResponse::Ok().json(SeedTrackedUser::from(row)))
}

#[utoipa::path(
    operation_id = "seed002_replace_tracked_user",
    tag = "seed-002",
    request_body = SeedTrackedUserChange,
    responses((status = 200, body = SeedTrackedUser), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[put("/tracked-users/{id}")]
async fn replace_tracked_user(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<SeedTrackedUserChange>,
) -> Result<HttpResponse, ApiError> {
    change_tracked_user(&state, id.into_inner(), body.into_inner()).await
}

#[utoipa::path(
    operation_id = "seed002_update_tracked_user",
    tag = "seed-002",
    request_body = SeedTrackedUserChange,
    responses((status = 200, body = SeedTrackedUser), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[patch("/tracked-users/{id}")]
async fn update_tracked_user(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<SeedTrackedUserChange>,
) -> Result<HttpResponse, ApiError> {
    change_tracked_user(&state, id.into_inner(), body.into_inner()).await
}

/// Stops tracking the person (the history stays).
#[utoipa::path(
    operation_id = "seed002_delete_tracked_user",
    tag = "seed-002",
    responses((status = 204, description = "No longer tracked"), (status = 404, body = ErrorBody))
)]
#[delete("/tracked-users/{id}")]
async fn delete_tracked_user(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let existing = tracked_users::find(&state, id.into_inner()).await?;
    state
        .tracking()
        .untrack(existing, false, state.clock.now())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- /online-statuses/ -----------------------------------------------------------------------

/// Seed 002's `OnlineStatus`: one observation of a tracked person.
#[derive(Serialize, ToSchema)]
struct SeedOnlineStatus {
    id: Uuid,
    tracked_user_id: Uuid,
    is_online: bool,
    /// When the status was seen.
    created_at: DateTime<Utc>,
    /// tgwatch's finer status: online, offline, recently, last_week, last_month or unknown.
    status: StatusKind,
}

impl From<status_checks::Model> for SeedOnlineStatus {
    fn from(row: status_checks::Model) -> Self {
        SeedOnlineStatus {
            id: row.id,
            tracked_user_id: row.tracked_user_id,
            is_online: row.status == StatusKind::Online,
            created_at: row.observed_at,
            status: row.status,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct OnlineStatusQuery {
    tracked_user_id: Option<Uuid>,
    /// The tracked person's username (`tracked_user__username`).
    username: Option<String>,
    is_online: Option<bool>,
    /// Seen before: RFC 3339 or a date (`2025-01-01`).
    created_at_before: Option<String>,
    /// Seen at or after: RFC 3339 or a date.
    created_at_after: Option<String>,
}

/// The observations (a JSON array), without those of people whose `visible_online` is false.
#[utoipa::path(
    operation_id = "seed002_list_online_statuses",
    tag = "seed-002",
    params(OnlineStatusQuery),
    responses((status = 200, body = Vec<SeedOnlineStatus>))
)]
#[get("/online-statuses")]
async fn list_online_statuses(
    _admin: Admin,
    state: web::Data<AppState>,
    query: params::Query<OnlineStatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let query = StatusFilter {
        tracked_user_id: query.tracked_user_id,
        username: query.username,
        is_online: query.is_online,
        status: None,
        created_at_after: query.created_at_after,
        created_at_before: query.created_at_before,
    };
    let filter = online_statuses::filter(&state, query).await?;
    let hidden = storage::tracked_users::online_hidden(&state.db).await?;
    let rows = every_page(|limit, cursor| {
        storage::observations::list(&state.db, filter.clone(), limit, cursor, Order::Asc)
    })
    .await?;
    let items: Vec<SeedOnlineStatus> = rows
        .into_iter()
        .filter(|row| !hidden.contains(&row.tracked_user_id))
        .map(SeedOnlineStatus::from)
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

/// An observation recorded by hand; it goes through the gap rule like a polled one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSeedOnlineStatus {
    tracked_user_id: Uuid,
    is_online: bool,
    /// When it was seen (RFC 3339 or a date); now by default.
    created_at: Option<String>,
}

#[utoipa::path(
    operation_id = "seed002_create_online_status",
    tag = "seed-002",
    request_body = NewSeedOnlineStatus,
    responses(
        (status = 201, body = SeedOnlineStatus),
        (status = 409, description = "The person is no longer tracked", body = ErrorBody),
        (status = 422, description = "No such tracked user", body = ErrorBody),
    )
)]
#[post("/online-statuses")]
async fn create_online_status(
    _admin: Admin,
    state: web::Data<AppState>,
    body: params::Json<NewSeedOnlineStatus>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let row = online_statuses::record(
        &state,
        NewStatus {
            tracked_user_id: body.tracked_user_id,
            status: None,
            is_online: Some(body.is_online),
            observed_at: body.created_at,
            expires_at: None,
            was_online_at: None,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(SeedOnlineStatus::from(row)))
}

#[utoipa::path(
    operation_id = "seed002_get_online_status",
    tag = "seed-002",
    responses((status = 200, body = SeedOnlineStatus), (status = 404, body = ErrorBody))
)]
#[get("/online-statuses/{id}")]
async fn get_online_status(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let row = online_statuses::find(&state, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(SeedOnlineStatus::from(row)))
}

/// A correction: the fields given replace the stored ones, and the person's sessions are folded
/// again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SeedOnlineStatusChange {
    is_online: Option<bool>,
    created_at: Option<String>,
}

async fn correct_online_status(
    state: &AppState,
    id: Uuid,
    body: SeedOnlineStatusChange,
) -> Result<HttpResponse, ApiError> {
    let correction = StatusCorrection {
        status: None,
        is_online: body.is_online,
        observed_at: body.created_at,
        expires_at: None,
        was_online_at: None,
    };
    let row = online_statuses::correct(state, id, correction).await?;
    Ok(HttpResponse::Ok().json(SeedOnlineStatus::from(row)))
}

#[utoipa::path(
    operation_id = "seed002_replace_online_status",
    tag = "seed-002",
    request_body = SeedOnlineStatusChange,
    responses((status = 200, body = SeedOnlineStatus), (status = 404, body = ErrorBody))
)]
#[put("/online-statuses/{id}")]
async fn replace_online_status(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<SeedOnlineStatusChange>,
) -> Result<HttpResponse, ApiError> {
    correct_online_status(&state, id.into_inner(), body.into_inner()).await
}

#[utoipa::path(
    operation_id = "seed002_update_online_status",
    tag = "seed-002",
    request_body = SeedOnlineStatusChange,
    responses((status = 200, body = SeedOnlineStatus), (status = 404, body = ErrorBody))
)]
#[patch("/online-statuses/{id}")]
async fn update_online_status(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: params::Json<SeedOnlineStatusChange>,
) -> Result<HttpResponse, ApiError> {
    correct_online_status(&state, id.into_inner(), body.into_inner()).await
}

/// Deletes the observation; the person's sessions are folded again without it.
#[utoipa::path(
    operation_id = "seed002_delete_online_status",
    tag = "seed-002",
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody))
)]
#[delete("/online-statuses/{id}")]
async fn delete_online_status(
    _admin: Admin,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    online_statuses::remove(&state, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracker_account_without_a_label_is_named_by_its_phone_then_its_telegram_id() {
        assert_eq!(
            default_label(Some("+15550001"), Some(42)).as_deref(),
            Some("+15550001")
        );
        assert_eq!(default_label(None, Some(42)).as_deref(), Some("42"));
        assert_eq!(default_label(None, None), None);
    }
}
