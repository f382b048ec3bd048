//! The HTTP face of omnichannel-crm: the REST API under `/api/`, its authentication and limits, the OpenAPI
//! document generated from the handlers, and the server loop that keeps connections within bounds.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod pagination;
pub mod rate_limit;
pub mod serve;
pub mod state;
pub mod webhook_accounts;
pub mod ws;

pub use api::router;
pub use error::ApiError;
pub use state::{AppState, WebParts, WebSettings};
