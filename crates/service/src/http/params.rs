//! Query-string pieces shared by the handlers.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::error::{ApiError, cut, echo};
use tgwatch_store::page::{DEFAULT_LIMIT, MAX_LIMIT, Order};

/// The query string read into `T`, like `web::Query`, but a value that does not fit is refused
/// naming its parameter and what it takes (`web::Query` says only "invalid digit found in
/// string").
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Query<T>, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(request.query_string()).map(Query))
    }
}

fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|error| {
        let parameter = error.path().to_string();
        let detail = error.into_inner().to_string();
        let value = form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| *key == parameter)
            .map(|(_, value)| value.into_owned());
        ApiError::bad_request("invalid_query", query_message(&parameter, value, &detail))
    })
}

/// What to say about a query parameter that could not be read: its name, what it takes, and
/// (cut short) what was given.
fn query_message(parameter: &str, value: Option<String>, detail: &str) -> String {
    let Some(value) = value else {
        // Not about one value: an unknown or missing parameter, which serde names itself.
        return echo_within(detail, None);
    };
    let expected = if [
        "invalid digit",
        "number too large",
        "number too small",
        "cannot parse integer",
    ]
    .iter()
    .any(|kind| detail.contains(kind))
    {
        Some("a whole number")
    } else if detail.contains("UUID") {
        Some("a UUID")
    } else if detail.contains("`true` or `false`") {
        Some("`true` or `false`")
    } else {
        None
    };
    match expected {
        Some(expected) => format!(
            "query parameter `{parameter}` must be {expected} (got `{}`)",
            echo(&value)
        ),
        None => format!(
            "query parameter `{parameter}`: {}",
            echo_within(detail, Some(&value))
        ),
    }
}

/// Longest serde message repeated: it names a parameter (maybe the caller's own, of any length)
/// and what is expected.
const MAX_DETAIL_CHARS: usize = 400;

/// A serde message, with the caller's `value` in it (when it repeats it) cut short.
fn echo_within(detail: &str, value: Option<&str>) -> String {
    let detail = match value {
        Some(value) if !value.is_empty() => detail.replace(value, &echo(value)),
        _ => detail.to_owned(),
    };
    cut(&detail, MAX_DETAIL_CHARS)
}

/// A JSON body read into `T`, like `web::Json` (same size limit, content type and syntax
/// errors, see `JsonConfig` in `routes`), but a field that does not fit is refused naming the
/// field (`web::Json` says only "invalid type: integer `42`, expected a string at line 1 column
/// 12").
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Json<T>, actix_web::Error>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<serde_json::Value>::from_request(request, payload);
        Box::pin(async move {
            let value = body.await?.into_inner();
            serde_path_to_error::deserialize(value)
                .map(Json)
                .map_err(|error| {
                    let field = error.path().to_string();
                    let detail = cut(&error.into_inner().to_string(), MAX_DETAIL_CHARS);
                    let message = if field == "." {
                        format!("invalid JSON body: {detail}")
                    } else {
                        format!("invalid JSON body: field `{field}`: {detail}")
                    };
                    ApiError::bad_request("invalid_body", message).into()
                })
        })
    }
}

/// The query of a list that is not paginated: just its `order`.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    pub order: Option<Order>,
}

/// A list that is not paginated: `{"items": [...]}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// `items`, read oldest first, in the `order` asked for (oldest first by default).
pub fn in_order<T>(mut items: Vec<T>, order: Option<Order>) -> Vec<T> {
    if order == Some(Order::Desc) {
        items.reverse();
    }
    items
}

/// `limit` (1..=1000, default 100) checked.
pub fn limit(limit: Option<u64>) -> Result<u64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(ApiError::bad_request(
            "invalid_query",
            format!("`limit` must be between 1 and {MAX_LIMIT}, got {limit}"),
        )),
    }
}

/// Parses a timestamp given as RFC 3339 (`2026-01-01T12:00:00Z`) or a date (`2026-01-01`, read as
/// midnight UTC, as seed 002's filters use it).
pub fn timestamp(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        && let Some(midnight) = date.and_hms_opt(0, 0, 0)
    {
        return Ok(Some(midnight.and_utc()));
    }
    Err(ApiError::bad_request(
        "invalid_timestamp",
        format!(
            "`{field}`: `{}` is not an RFC 3339 timestamp (2026-01-01T12:00:00Z) or a date (2026-01-01)",
            echo(value)
        ),
    ))
}

/// Checks that `after` is not later than `before` when both are given.
pub fn ordered(
    after_field: &str,
    after: Option<DateTime<Utc>>,
    before_field: &str,
    before: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    if let (Some(after), Some(before)) = (after, before)
        && after > before
    {
        return Err(ApiError::bad_request(
            "invalid_timestamp",
            format!("`{after_field}` ({after}) is later than `{before_field}` ({before})"),
        ));
    }
    Ok(())
}
