//! The predecessor's page envelope: `{"count", "next", "previous", "results"}` with `?page=`.

use axum::http::{HeaderMap, Uri, header::HOST};
use crm_store::Page;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// `?page=N` (1-based).
#[derive(Debug, Clone, Copy, Deserialize, IntoParams)]
pub struct PageQuery {
    /// Page number, from 1.
    pub page: Option<u64>,
}

impl PageQuery {
    /// The requested page; 0 is invalid.
    pub fn number(&self) -> Result<u64, ApiError> {
        match self.page {
            None => Ok(1),
            Some(0) => Err(ApiError::invalid(
                "invalid_page",
                "Invalid page: pages start at 1.",
            )),
            Some(n) => Ok(n),
        }
    }
}

/// One page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageEnvelope<T> {
    /// Items over all pages.
    pub count: u64,
    /// URL of the next page, if any.
    pub next: Option<String>,
    /// URL of the previous page, if any.
    pub previous: Option<String>,
    /// This page's items.
    pub results: Vec<T>,
}

fn page_url(headers: &HeaderMap, uri: &Uri, page: u64) -> String {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|s| *s == "https")
        .unwrap_or("http");
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .filter(|(k, _)| k != "page")
                .collect()
        })
        .unwrap_or_default();
    if page > 1 {
        pairs.push(("page".to_owned(), page.to_string()));
    }
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let separator = if query.is_empty() { "" } else { "?" };
    format!("{scheme}://{host}{}{separator}{query}", uri.path())
}

impl<T> PageEnvelope<T> {
    /// Builds the envelope for `page`, with absolute `next`/`previous` links like DRF's. A page past the end
    /// (other than the first) is 404 `invalid_page`, as in DRF.
    pub fn build(page: Page<T>, headers: &HeaderMap, uri: &Uri) -> Result<Self, ApiError> {
        if page.page > 1 && page.items.is_empty() {
            return Err(ApiError::Core(crm_core::CoreError::NotFound(
                "Invalid page.".into(),
            )));
        }
        let next = page.has_next().then(|| page_url(headers, uri, page.page + 1));
        let previous = (page.page > 1).then(|| page_url(headers, uri, page.page - 1));
        Ok(Self {
            count: page.total,
            next,
            previous,
            results: page.items,
        })
    }
}
