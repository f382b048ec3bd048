//! The `crm` server: configuration, logging, the command line, and the wiring of store, bus, jobs and web into
//! one process. `main.rs` only calls [`cli::run`].

pub mod accounts_cli;
pub mod app;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod logging;
pub mod secret_key;

pub use app::Application;
pub use config::Settings;
