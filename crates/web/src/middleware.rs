//! Cross-cutting request handling: the `Host` check, trailing-slash tolerance, request ids, tracing, CORS and
//! body limits.

use axum::extract::{Request, State};
use axum::http::header::HOST;
use axum::http::{HeaderValue, Method, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::error::ApiError;
use crate::state::{AppState, WebSettings};

/// Whether `host` (from the `Host` header, port removed) matches `allowed` (Django's rules: `*`, exact, or
/// `.example.com` for the domain and its subdomains).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.to_ascii_lowercase();
    allowed.iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        pattern == "*"
            || pattern == host
            || pattern
                .strip_prefix('.')
                .is_some_and(|domain| host == domain || host.ends_with(&format!(".{domain}")))
    })
}

/// Removes the port from a `Host` header value, keeping IPv6 literals whole (`[::1]:8000` → `::1`).
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Refuses requests whose `Host` is not in `ALLOWED_HOSTS` (400 `disallowed_host`).
pub async fn check_host(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(strip_port);
    match host {
        Some(host) if host_allowed(host, &state.settings.allowed_hosts) => next.run(request).await,
        _ => ApiError::invalid("disallowed_host", "Invalid Host header: add it to ALLOWED_HOSTS.")
            .into_response(),
    }
}

/// Adds the trailing slash the API's paths use (`/api/health` → `/api/health/`), so clients need not care.
pub fn append_api_slash(mut request: Request) -> Request {
    let path = request.uri().path();
    if path.starts_with("/api/") && !path.ends_with('/') && !path.ends_with(".json") {
        let new_path = format!("{path}/");
        let path_and_query = match request.uri().query() {
            Some(query) => format!("{new_path}?{query}"),
            None => new_path,
        };
        let mut parts = request.uri().clone().into_parts();
        if let Ok(value) = path_and_query.parse() {
            parts.path_and_query = Some(value);
            if let Ok(uri) = Uri::from_parts(parts) {
                *request.uri_mut() = uri;
            }
        }
    }
    request
}

/// CORS for the configured origins, with credentials, as the predecessor allowed.
pub fn cors(settings: &WebSettings) -> CorsLayer {
    let origins: Vec<HeaderValue> = settings
        .cors_allowed_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderName::from_static("x-csrftoken"),
        ])
}

/// The machine code of an error status that reached the client without a JSON body (a rejection by axum or a
/// layer rather than by a handler).
fn code_of_status(status: axum::http::StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_body",
        401 => "not_authenticated",
        403 => "permission_denied",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "request_timeout",
        411 => "length_required",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "invalid_body",
        426 => "upgrade_required",
        429 => "rate_limited",
        503 => "unavailable",
        _ if status.is_server_error() => "internal_error",
        _ => "invalid_request",
    }
}

/// Turns every error answer without a JSON body (`413 Failed to buffer the request body`, `Invalid boundary for
/// multipart/form-data`, a failed WebSocket upgrade) into `{"error": ..., "code": ...}` like every other error.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("Request failed").to_owned()
    } else {
        text
    };
    let body = crate::error::ErrorBody {
        error: message,
        code: code_of_status(status).to_owned(),
        retry_after: None,
    };
    let mut rebuilt = (status, axum::Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            rebuilt.headers_mut().append(name.clone(), value.clone());
        }
    }
    rebuilt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_follow_django_rules() {
        let allowed = vec!["localhost".to_owned(), ".example.com".to_owned()];
        assert!(host_allowed("localhost", &allowed));
        assert!(host_allowed("crm.example.com", &allowed));
        assert!(host_allowed("example.com", &allowed));
        assert!(!host_allowed("evil-example.com", &allowed));
        assert!(!host_allowed("attacker.test", &allowed));
        assert!(host_allowed("anything", &["*".to_owned()]));
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("localhost:8000"), "localhost");
        assert_eq!(strip_port("[::1]:8000"), "::1");
        assert_eq!(strip_port("example.com"), "example.com");
    }

    #[test]
    fn api_paths_gain_a_trailing_slash() {
        let request = Request::builder()
            .uri("/api/health?x=1")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(append_api_slash(request).uri().to_string(), "/api/health/?x=1");
        let request = Request::builder()
            .uri("/api/openapi.json")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(append_api_slash(request).uri().path(), "/api/openapi.json");
    }
}
