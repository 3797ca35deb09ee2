//! Query-string pieces shared by the handlers.

use chrono::{DateTime, NaiveDate, Utc};

use super::error::ApiError;
use crate::storage::page::{DEFAULT_LIMIT, MAX_LIMIT};

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
            "`{field}`: `{value}` is not an RFC 3339 timestamp (2026-01-01T12:00:00Z) or a date (2026-01-01)"
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
