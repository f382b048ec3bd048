//! Logs through `tracing`: coloured on a terminal, plain when piped, JSON with `LOG_FORMAT=json`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` wins over `level`; noisy dependencies are kept at `warn`.
pub fn init(level: &str, format: &str) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| !f.is_empty())
        .unwrap_or_else(|| {
            if level.contains('=') {
                level.to_owned()
            } else {
                format!("{level},sqlx=warn,sea_orm=warn,hyper=warn")
            }
        });
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        "json" => builder.json().flatten_event(true).try_init(),
        "pretty" => builder.with_ansi(true).try_init(),
        "plain" => builder.with_ansi(false).try_init(),
        _ => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
    // A subscriber may already be installed (tests); the first one stays.
    drop(result);
}
