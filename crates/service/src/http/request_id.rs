//! Every request gets an id: the caller's `x-request-id` when it is a short token, else a new
//! one. The id is returned in the `x-request-id` header and as `request_id` in every error object,
//! and it is a field of the request's span, so the service's log lines about a request can be
//! found from what the caller saw. One access line per request, at info.

use std::time::Instant;

use actix_web::{
    Error, HttpResponse, ResponseError,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{
        StatusCode,
        header::{HeaderName, HeaderValue},
    },
    middleware::Next,
};
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request being handled, for the error body (`ApiError::error_response`).
    static REQUEST_ID: String;
}

/// The id of the request this task is handling, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A caller's id is kept when it is 1 to 64 characters of `[A-Za-z0-9._-]` (anything else could
/// forge log lines or bloat them).
fn caller_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let acceptable = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'));
    acceptable.then(|| text.to_owned())
}

pub async fn middleware(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(caller_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.path(),
    );
    let started = Instant::now();
    let result = REQUEST_ID
        .scope(id.clone(), next.call(request))
        .instrument(span.clone())
        .await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            tracing::info!(parent: &span, %error, "request refused");
            return Err(Identified { error, id }.into());
        }
    };
    tracing::info!(
        parent: &span,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    Ok(response)
}

/// An error from further in (a middleware's refusal: a 401, a 414), which the server renders
/// after this middleware has returned: rendered with the request's id all the same.
#[derive(Debug)]
struct Identified {
    error: Error,
    id: String,
}

impl std::fmt::Display for Identified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl ResponseError for Identified {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = REQUEST_ID.sync_scope(self.id.clone(), || self.error.error_response());
        if let Ok(value) = HeaderValue::from_str(&self.id) {
            response.headers_mut().insert(HEADER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_id_is_kept_only_when_it_is_a_short_token() {
        let keep = |text: &str| caller_id(&HeaderValue::from_str(text).unwrap());
        assert_eq!(keep("abc-123_x.y"), Some("abc-123_x.y".to_owned()));
        assert_eq!(keep(""), None);
        assert_eq!(keep(&"a".repeat(65)), None);
        assert_eq!(keep("a b"), None);
        assert_eq!(keep("a\"}"), None);
    }
}
