//! `crm-bench`: starts the real server in-process on a loopback port over a seeded database (1,000 chats,
//! 100,000 messages) with its Bot API pointed at an in-process fake, and prints figures as markdown tables:
//! webhook intake with Telegram-shaped traffic at two concurrency levels, the same writes as a bare SQL loop on
//! the same database (and the ratio), intake paced at a fixed rate, the chat list and chat history, replies
//! through the API to the fake Bot API, the process's memory, and 1,000 WebSocket connections. Every scenario is
//! bounded by a request count and a time limit, and sends traffic only to 127.0.0.1.

mod bare;
mod fake_bot_api;
mod load;
mod replies;
mod report;
mod scenarios;
mod seed;
mod traffic;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use crm::{Application, Settings};
use serde_json::json;

use crate::fake_bot_api::FakeBotApi;
use crate::report::progress;
use crate::scenarios::Bench;

const ADMIN_PASSWORD: &str = "benchmark-admin-password";

/// A group of scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Webhook intake, closed loop at each concurrency, and the bare loop beside it.
    Intake,
    /// Webhook intake at a fixed rate.
    Paced,
    /// Chat list and chat history.
    Reads,
    /// Replies through the API to the fake Bot API.
    Replies,
    /// WebSocket connections: memory and fan-out delay.
    Ws,
}

/// Command line of the benchmark.
#[derive(Debug, Parser)]
#[command(
    name = "crm-bench",
    about = "Load benchmarks that print req/s and p50/p99 latency as markdown tables"
)]
pub struct Args {
    /// Database URL (an empty database); default: a SQLite file in a temporary directory.
    #[arg(long, env = "CRM_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Connections of the server's pool (`DB_MAX_CONNECTIONS`; on SQLite, readers, at most 4).
    #[arg(long, default_value_t = 16)]
    db_max_connections: u32,
    /// Scenarios to run.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Scenario::Intake, Scenario::Paced, Scenario::Reads, Scenario::Replies, Scenario::Ws])]
    scenarios: Vec<Scenario>,
    /// Chats to seed.
    #[arg(long, default_value_t = 1_000)]
    chats: i64,
    /// Messages to seed, spread over the chats.
    #[arg(long, default_value_t = 100_000)]
    messages: i64,
    /// Chats that get nine in ten webhook updates.
    #[arg(long, default_value_t = 20)]
    hot_chats: usize,
    /// Concurrency levels of the closed-loop intake (and of the bare loop on MySQL/PostgreSQL).
    #[arg(long, value_delimiter = ',', default_values_t = [10, 50])]
    concurrency: Vec<usize>,
    /// Webhook updates per closed-loop intake scenario (and per bare loop).
    #[arg(long, default_value_t = 20_000)]
    intake_requests: usize,
    /// Leave out the bare loop (to profile the intake alone).
    #[arg(long)]
    no_bare: bool,
    /// Updates per second of the paced intake.
    #[arg(long, default_value_t = 1_000)]
    paced_rate: u32,
    /// Seconds of paced intake.
    #[arg(long, default_value_t = 10)]
    paced_seconds: u64,
    /// Requests per read scenario.
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    /// Replies sent through the API.
    #[arg(long, default_value_t = 1_000)]
    replies: usize,
    /// Longest a scenario may run, in seconds (waiting for replies to drain may take twice that).
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// WebSocket connections to open (0 skips the WebSocket scenario).
    #[arg(long, default_value_t = 1_000)]
    ws_clients: usize,
    /// Messages timed from webhook to every WebSocket client.
    #[arg(long, default_value_t = 50)]
    ws_rounds: usize,
    /// Log level of the server (its warnings and errors go to standard error).
    #[arg(long, default_value = "warn")]
    log_level: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("--ws-client") {
        return websocket::run_clients(websocket::ClientPlan::from_args(
            raw.get(2..).unwrap_or_default(),
        )?)
        .await;
    }
    let args = Args::parse();
    crm::logging::init(&args.log_level, "plain");
    let scratch = tempfile::tempdir()?;
    let fake = FakeBotApi::start().await?;
    let mut settings = Settings::defaults();
    settings.database_url = Some(args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            scratch.path().join("bench.sqlite3").display()
        )
    }));
    settings.db_max_connections = args.db_max_connections;
    settings.data_dir = scratch.path().join("data");
    settings.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.secret_key = Some("benchmark-secret-key-long-enough".into());
    settings.crm_admin_password = Some(ADMIN_PASSWORD.into());
    settings.telegram_bot_api_url = fake.base_url.clone();
    progress("starting the server");
    let app = Application::build(settings).await?;
    let address = app.local_addr()?;
    let store = app.store().clone();
    let courier = app.courier();
    progress(format!(
        "seeding {} chats and {} messages",
        args.chats, args.messages
    ));
    let seeded = seed::seed(&store, args.chats, args.messages).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()?;
    let base = format!("http://{address}");
    let login: serde_json::Value = client
        .post(format!("{base}/api/api-token-auth/"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("admin token")?.to_owned();
    let mut bench = Bench {
        args: &args,
        store: store.clone(),
        client,
        base,
        token,
        seeded,
        traffic: Arc::new(traffic::Traffic::new(args.chats, args.hot_chats, 1_000_000)),
        report: scenarios::Report::default(),
    };
    bench.report.title(&store).await;
    if args.scenarios.contains(&Scenario::Intake) {
        bench.intake().await?;
    }
    if args.scenarios.contains(&Scenario::Paced) {
        bench.paced().await;
    }
    if args.scenarios.contains(&Scenario::Reads) {
        bench.reads().await;
    }
    if args.scenarios.contains(&Scenario::Replies) {
        bench.replies(courier, &fake).await;
    }
    bench.memory();
    if args.scenarios.contains(&Scenario::Ws) && args.ws_clients > 0 {
        bench.websocket().await?;
    }
    let _ = stop.send(());
    server.await??;
    bench.report.print();
    Ok(())
}
