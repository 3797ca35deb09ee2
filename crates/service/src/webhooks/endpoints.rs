//! Managing webhook endpoints: the checks shared by the API and the config file.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, DatabaseConnection};
use serde_json::json;
use uuid::Uuid;

use super::address;
use tgwatch_core::config::Origin;
use tgwatch_core::signing::SigningSecret;
use tgwatch_core::{
    config::{WebhookEndpointConfig, WebhooksConfig},
    events::EventType,
};
use tgwatch_store::{
    self as storage, StorageError,
    entities::webhooks,
    webhooks::{EndpointStatus, NewWebhook},
};
use tgwatch_telegram::Username;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("`url`: {0}")]
    Url(#[from] address::UrlError),
    #[error("`event_types`: unknown event type `{0}` (use {known} or all)", known = known_types())]
    UnknownEventType(String),
    #[error("`event_types` must name at least one event type, or all")]
    NoEventTypes,
    #[error("`status` can be set to active or inactive; `{0}` is set by the service")]
    Status(String),
    #[error("`secret`: {0}")]
    Secret(#[from] tgwatch_core::signing::SecretError),
    #[error("tracked user {0} does not exist")]
    UnknownTrackedUser(String),
    #[error("`name` must be 1 to {MAX_NAME_CHARS} characters")]
    Name,
    #[error("`name`: a webhook named `{}` exists already", .0.name.as_deref().unwrap_or_default())]
    DuplicateName(Box<webhooks::Model>),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn known_types() -> String {
    EventType::SUBSCRIBABLE.map(|t| t.as_str()).join(", ")
}

/// Checks event type names and puts them in a canonical form.
pub fn event_types(names: &[String]) -> Result<Vec<String>, EndpointError> {
    if names.is_empty() {
        return Err(EndpointError::NoEventTypes);
    }
    if names.iter().any(|n| n == "all") {
        return Ok(vec!["all".to_owned()]);
    }
    let mut types = Vec::new();
    for name in names {
        let kind = EventType::parse(name)
            .filter(|kind| *kind != EventType::Test)
            .ok_or_else(|| EndpointError::UnknownEventType(name.clone()))?;
        if !types.contains(&kind.as_str().to_owned()) {
            types.push(kind.as_str().to_owned());
        }
    }
    Ok(types)
}

/// Names are labels for people: short.
const MAX_NAME_CHARS: usize = 64;

pub struct EndpointRequest {
    pub name: Option<String>,
    pub url: String,
    pub event_types: Vec<String>,
    pub tracked_user_id: Option<Uuid>,
}

/// Creates an endpoint with a new secret (or the given one, for config entries). Returns the
/// row and the secret, which the API shows this once.
pub async fn create(
    db: &DatabaseConnection,
    config: &WebhooksConfig,
    request: EndpointRequest,
    secret: Option<SigningSecret>,
    source: Origin,
    now: DateTime<Utc>,
) -> Result<(webhooks::Model, SigningSecret), EndpointError> {
    if let Some(name) = &request.name {
        if name.trim().is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(EndpointError::Name);
        }
        if let Some(existing) = storage::webhooks::find_by_name(db, name).await? {
            return Err(EndpointError::DuplicateName(Box::new(existing)));
        }
    }
    let url = address::check(&request.url, &address::Destinations::new(config)).await?;
    let event_types = event_types(&request.event_types)?;
    if let Some(id) = request.tracked_user_id
        && storage::tracked_users::get(db, id).await?.is_none()
    {
        return Err(EndpointError::UnknownTrackedUser(id.to_string()));
    }
    let secret = secret.unwrap_or_else(SigningSecret::generate);
    let name = request.name.clone();
    let created = storage::webhooks::create(
        db,
        NewWebhook {
            name: request.name,
            url: url.to_string(),
            event_types,
            tracked_user_id: request.tracked_user_id,
            channel_id: None,
            secret: secret.expose(),
            source,
        },
        now,
    )
    .await;
    match (created, name) {
        (Ok(row), _) => Ok((row, secret)),
        // Another request took the name between the check and the write.
        (Err(error), Some(name))
            if error
                .unique_violation()
                .is_some_and(|violation| violation.is("webhooks", "name")) =>
        {
            let existing = storage::webhooks::find_by_name(db, &name)
                .await?
                .ok_or(error)?;
            Err(EndpointError::DuplicateName(Box::new(existing)))
        }
        (Err(error), _) => Err(error.into()),
    }
}

pub struct EndpointPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub status: Option<String>,
}

/// Changes an endpoint. Setting `status` to active re-enables a disabled endpoint: its pending
/// messages go out again.
pub async fn update(
    db: &DatabaseConnection,
    config: &WebhooksConfig,
    existing: webhooks::Model,
    patch: EndpointPatch,
    now: DateTime<Utc>,
) -> Result<webhooks::Model, EndpointError> {
    let mut row: webhooks::ActiveModel = existing.into();
    if let Some(url) = patch.url {
        row.url = Set(address::check(&url, &address::Destinations::new(config))
            .await?
            .to_string());
    }
    if let Some(types) = patch.event_types {
        row.event_types = Set(json!(event_types(&types)?).to_string());
    }
    if let Some(status) = patch.status {
        let status = match status.as_str() {
            "active" => EndpointStatus::Active,
            "inactive" => EndpointStatus::Inactive,
            _ => return Err(EndpointError::Status(status)),
        };
        if status == EndpointStatus::Active {
            row.failure_count = Set(0);
            row.consecutive_failed_messages = Set(0);
            row.failing_since = Set(None);
        }
        row.status = Set(status);
        row.status_reason = Set(None);
    }
    row.updated_at = Set(now);
    Ok(storage::webhooks::save(db, row).await?)
}

/// A new secret signs from now on; the old one also signs until the overlap ends.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    config: &WebhooksConfig,
    existing: webhooks::Model,
    now: DateTime<Utc>,
) -> Result<(webhooks::Model, SigningSecret), EndpointError> {
    let secret = SigningSecret::generate();
    let overlap =
        chrono::Duration::milliseconds((config.secret_overlap_hours * 3_600_000.0) as i64);
    let mut row: webhooks::ActiveModel = existing.clone().into();
    row.previous_secret = Set(Some(existing.secret));
    row.previous_secret_until = Set(Some(now + overlap));
    row.secret = Set(secret.expose());
    row.updated_at = Set(now);
    Ok((storage::webhooks::save(db, row).await?, secret))
}

/// Brings the endpoints declared in config.toml in line with the file: creates the new ones,
/// updates changed ones, removes those no longer declared. API-made endpoints are left alone.
/// A declaration that cannot apply is logged and skipped.
pub async fn reconcile(
    db: &DatabaseConnection,
    config: &WebhooksConfig,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let existing = storage::webhooks::all(db).await?;
    for declared in &config.endpoints {
        let current = existing
            .iter()
            .find(|w| w.name.as_deref() == Some(declared.name.as_str()));
        if let Err(error) = apply_declared(db, config, declared, current.cloned(), now).await {
            let message = format!("config webhook `{}`: {error}", declared.name);
            storage::logs::config_problem(db, &message, now).await;
        }
    }
    for stale in existing.iter().filter(|w| {
        w.source == Origin::Config
            && !config
                .endpoints
                .iter()
                .any(|d| Some(d.name.as_str()) == w.name.as_deref())
    }) {
        storage::webhooks::delete(db, stale.id).await?;
    }
    Ok(())
}

async fn apply_declared(
    db: &DatabaseConnection,
    config: &WebhooksConfig,
    declared: &WebhookEndpointConfig,
    current: Option<webhooks::Model>,
    now: DateTime<Utc>,
) -> Result<(), EndpointError> {
    let tracked_user_id = match &declared.tracked_user {
        Some(name) => {
            let username = Username::parse(name)
                .map_err(|_| EndpointError::UnknownTrackedUser(name.clone()))?;
            let ids = storage::tracked_users::ids_by_username(db, &username).await?;
            Some(
                *ids.first()
                    .ok_or_else(|| EndpointError::UnknownTrackedUser(name.clone()))?,
            )
        }
        None => None,
    };
    let secret = SigningSecret::parse(declared.secret.expose())?;
    match current {
        None => {
            let request = EndpointRequest {
                name: Some(declared.name.clone()),
                url: declared.url.clone(),
                event_types: declared.events.clone(),
                tracked_user_id,
            };
            create(db, config, request, Some(secret), Origin::Config, now).await?;
        }
        Some(current) => {
            let mut row: webhooks::ActiveModel = current.into();
            row.url = Set(
                address::check(&declared.url, &address::Destinations::new(config))
                    .await?
                    .to_string(),
            );
            row.event_types = Set(json!(event_types(&declared.events)?).to_string());
            row.tracked_user_id = Set(tracked_user_id);
            row.secret = Set(secret.expose());
            // Declared in the file: the file owns it from now on (removed when it leaves).
            row.source = Set(Origin::Config);
            row.updated_at = Set(now);
            storage::webhooks::save(db, row).await?;
        }
    }
    Ok(())
}
