//! One trailing-slash normalisation for the whole service: seed 002's clients (Django REST) put a
//! slash at the end of every path (`/tracker-accounts/`), tgwatch's routes have none. A path that
//! ends in `/` and matches no route is routed as if the slash were not there, when that matches
//! one; a path that matches as written (`/`, the Swagger UI page `/api/docs/`) is left alone, so
//! nothing is served twice under different rules and no route is registered twice.

use actix_web::{
    Error,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::uri::{PathAndQuery, Uri},
    middleware::Next,
};

/// `path` without its trailing slashes, when it has some and is more than `/`.
fn trimmed(path: &str) -> Option<&str> {
    let bare = path.trim_end_matches('/');
    (bare.len() < path.len() && !bare.is_empty()).then_some(bare)
}

/// The request target with `path` in place of the current path, the query kept.
fn with_path(uri: &Uri, path: &str) -> Option<Uri> {
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(target).ok()?);
    Uri::from_parts(parts).ok()
}

/// Routes `/x/` as `/x` when only the latter is a route (wraps the whole app, before routing).
pub async fn accept_trailing_slash(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let rewrite = {
        let path = request.path();
        let routes = request.request().resource_map();
        trimmed(path)
            .filter(|bare| !routes.has_resource(path) && routes.has_resource(bare))
            .and_then(|bare| with_path(request.uri(), bare))
    };
    if let Some(uri) = rewrite {
        // What actix-web's own `NormalizePath` does: the router reads the path from `match_info`.
        request.match_info_mut().get_mut().update(&uri);
        request.head_mut().uri = uri;
    }
    next.call(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_path_longer_than_the_root_with_trailing_slashes_is_trimmed() {
        assert_eq!(trimmed("/tracker-accounts/"), Some("/tracker-accounts"));
        assert_eq!(trimmed("/api/accounts/1//"), Some("/api/accounts/1"));
        assert_eq!(trimmed("/api/accounts"), None);
        assert_eq!(trimmed("/"), None);
        assert_eq!(trimmed("//"), None);
    }

    #[test]
    fn the_query_is_kept_when_the_path_is_replaced() {
        let uri: Uri = "/online-statuses/?is_online=true&username=a%2Fb"
            .parse()
            .unwrap();
        let replaced = with_path(&uri, "/online-statuses").unwrap();
        assert_eq!(
            replaced.to_string(),
            "/online-statuses?is_online=true&username=a%2Fb"
        );
        let bare: Uri = "/telegram-users/42/".parse().unwrap();
        assert_eq!(
            with_path(&bare, "/telegram-users/42").unwrap().to_string(),
            "/telegram-users/42"
        );
    }
}
