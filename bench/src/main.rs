//! `crm-bench`: starts the server in-process on a loopback port over a database seeded with 1,000 chats and
//! 100,000 messages, then measures webhook intake (at two concurrency levels), the chat list and chat history,
//! printing requests per second and p50/p99 latency, and finally 1,000 WebSocket connections (memory per idle
//! connection, delay from webhook to every client). Every scenario is bounded by a request count and a time
//! limit, and sends traffic only to 127.0.0.1.

mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeZone, Utc};
use clap::Parser;
use crm::{Application, Settings};
use crm_core::account::{AccountStatus, AccountType};
use crm_core::secrets::Sensitive;
use crm_store::entity::{chats, messages};
use crm_store::repo::accounts::{self, NewAccount};
use futures::StreamExt;
use sea_orm::{EntityTrait, Set};
use serde_json::json;

const TOKEN: &str = "7999999999:AABenchmarkBotTokenForLoadTests_abcdefg";
const SECRET: &str = "benchmark-webhook-secret";
const ADMIN_PASSWORD: &str = "benchmark-admin-password";

/// Command line of the benchmark.
#[derive(Debug, Parser)]
#[command(
    name = "crm-bench",
    about = "Load benchmarks that print requests/s and p50/p99 latency"
)]
struct Args {
    /// Database URL (an empty database); default: a temporary SQLite file.
    #[arg(long, env = "CRM_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Chats to seed.
    #[arg(long, default_value_t = 1_000)]
    chats: i64,
    /// Messages to seed, spread over the chats.
    #[arg(long, default_value_t = 100_000)]
    messages: i64,
    /// Requests per scenario.
    #[arg(long, default_value_t = 2_000)]
    requests: usize,
    /// Longest a scenario may run, in seconds.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    /// WebSocket connections to open (0 skips the WebSocket scenario).
    #[arg(long, default_value_t = 1_000)]
    ws_clients: usize,
    /// Messages timed from webhook to every WebSocket client.
    #[arg(long, default_value_t = 50)]
    ws_rounds: usize,
}

/// Latencies of one scenario.
struct Figures {
    name: String,
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Figures {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }

    fn print(&self) {
        let rate = self.latencies.len() as f64 / self.elapsed.as_secs_f64();
        println!(
            "| {:<34} | {:>8} | {:>9.0} | {:>8.2} | {:>8.2} | {:>6} |",
            self.name,
            self.latencies.len(),
            rate,
            self.percentile(0.50).as_secs_f64() * 1000.0,
            self.percentile(0.99).as_secs_f64() * 1000.0,
            self.errors
        );
    }
}

async fn seed(store: &crm_store::Store, args: &Args) -> anyhow::Result<(i64, Vec<i64>)> {
    let account = accounts::create(
        store,
        NewAccount {
            name: "Bench bot".into(),
            account_type: AccountType::Bot,
            status: AccountStatus::Active,
            phone_number: None,
            api_id: None,
            api_hash: None,
            session: None,
            bot_token: Some(Sensitive(TOKEN.into())),
            bot_username: Some("bench_bot".into()),
            webhook_secret: Some(Sensitive(SECRET.into())),
            telegram_user_id: Some(7_999_999_999),
            forward_url: None,
        },
    )
    .await?;
    let now = Utc::now();
    let per_chat = args.messages / args.chats;
    let base = Utc
        .timestamp_opt(1_700_000_000, 0)
        .single()
        .context("base time")?;
    let chat_rows: Vec<chats::ActiveModel> = (0..args.chats)
        .map(|n| chats::ActiveModel {
            account_id: Set(account.id),
            peer_id: Set(1_000_000 + n),
            chat_type: Set("private".into()),
            first_name: Set(Some(format!("Customer {n}"))),
            unread_count: Set(0),
            message_count: Set(i32::try_from(per_chat).unwrap_or(i32::MAX)),
            last_message_at: Set(Some(base + chrono::Duration::seconds(per_chat))),
            is_blocked: Set(false),
            metadata: Set(json!({})),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    for batch in chat_rows.chunks(500) {
        chats::Entity::insert_many(batch.to_vec())
            .exec(store.db())
            .await?;
    }
    let chat_ids: Vec<i64> = chats::Entity::find()
        .all(store.db())
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let mut inserted = 0;
    let mut batch = Vec::with_capacity(1_000);
    for (index, chat_id) in chat_ids.iter().enumerate() {
        for m in 0..per_chat {
            batch.push(messages::ActiveModel {
                chat_id: Set(*chat_id),
                telegram_message_id: Set(Some(m + 1)),
                direction: Set(if m % 3 == 0 { "out" } else { "in" }.into()),
                message_type: Set("text".into()),
                text: Set(Some(format!(
                    "Seeded message {m} of chat {index}: where is my order?"
                ))),
                sender_id: Set(Some(1_000_000 + i64::try_from(index).unwrap_or(0))),
                sender_name: Set(Some(format!("Customer {index}"))),
                status: Set("received".into()),
                telegram_date: Set(base + chrono::Duration::seconds(m)),
                is_deleted: Set(false),
                metadata: Set(json!({})),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            });
            if batch.len() == 1_000 {
                inserted += batch.len();
                messages::Entity::insert_many(std::mem::take(&mut batch))
                    .exec(store.db())
                    .await?;
                if inserted % 20_000 == 0 {
                    println!("  seeded {inserted} messages");
                }
            }
        }
    }
    if !batch.is_empty() {
        messages::Entity::insert_many(batch).exec(store.db()).await?;
    }
    Ok((account.id, chat_ids))
}

async fn run<F, Fut>(name: String, requests: usize, concurrency: usize, limit: Duration, call: F) -> Figures
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let outcomes: Vec<(Duration, bool)> = futures::stream::iter(0..requests)
        .take_while(|_| futures::future::ready(started.elapsed() < limit))
        .map(|n| {
            let request = call(n);
            async move {
                let sent = Instant::now();
                let ok = request.await;
                (sent.elapsed(), ok)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let errors = outcomes.iter().filter(|(_, ok)| !ok).count();
    Figures {
        name,
        latencies: outcomes.into_iter().map(|(l, _)| l).collect(),
        errors,
        elapsed: started.elapsed(),
    }
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let index = ((sorted.len().max(1) - 1) as f64 * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let raw: Vec<String> = std::env::args().collect();
    if raw.get(1).map(String::as_str) == Some("--ws-client") {
        return websocket::run_clients(websocket::ClientPlan::from_args(&raw[2..])?).await;
    }
    let args = Args::parse();
    let scratch = tempfile::tempdir()?;
    let mut settings = Settings::defaults();
    settings.database_url = Some(args.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            scratch.path().join("bench.sqlite3").display()
        )
    }));
    settings.data_dir = scratch.path().join("data");
    settings.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.secret_key = Some("benchmark-secret-key-long-enough".into());
    settings.crm_admin_password = Some(ADMIN_PASSWORD.into());
    settings.telegram_bot_api_url = "http://127.0.0.1:9".into();
    let app = Application::build(settings).await?;
    let address = app.local_addr()?;
    let store = app.store().clone();
    println!("backend: {}", store.backend().as_str());
    println!("seeding {} chats and {} messages …", args.chats, args.messages);
    let seeding = Instant::now();
    let (account_id, chat_ids) = seed(&store, &args).await?;
    println!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder().pool_max_idle_per_host(64).build()?;
    let base = format!("http://{address}");
    let login: serde_json::Value = client
        .post(format!("{base}/api/api-token-auth/"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("admin token")?.to_owned();
    let limit = Duration::from_secs(args.time_limit);
    let next_message = Arc::new(AtomicI64::new(1_000_000));
    let chats = Arc::new(chat_ids);

    println!();
    println!(
        "| {:<34} | {:>8} | {:>9} | {:>8} | {:>8} | {:>6} |",
        "scenario", "requests", "req/s", "p50 ms", "p99 ms", "errors"
    );
    println!(
        "|{:-<36}|{:->10}|{:->11}|{:->10}|{:->10}|{:->8}|",
        "", "", "", "", "", ""
    );
    for concurrency in [10, 50] {
        let figures = run(format!("webhook intake, concurrency {concurrency}"), args.requests, concurrency, limit, |n| {
            let id = next_message.fetch_add(1, Ordering::Relaxed);
            let peer = 1_000_000 + i64::try_from(n % chats.len()).unwrap_or(0);
            let update = json!({"update_id": id, "message": {"message_id": id, "date": 1_800_000_000 + id,
                "chat": {"id": peer, "type": "private", "first_name": "Customer"}, "from": {"id": peer, "first_name": "Customer"},
                "text": "a new question from a customer"}});
            let request = client
                .post(format!("{base}/api/webhook/bot/{account_id}/"))
                .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                .json(&update)
                .send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        figures.print();
    }
    for concurrency in [10, 50] {
        let figures = run(
            format!("GET /api/chats/, concurrency {concurrency}"),
            args.requests,
            concurrency,
            limit,
            |n| {
                let page = n % 20 + 1;
                let request = client
                    .get(format!("{base}/api/chats/?page={page}"))
                    .header("Authorization", format!("Token {token}"))
                    .send();
                async move { request.await.is_ok_and(|r| r.status().is_success()) }
            },
        )
        .await;
        figures.print();
    }
    for concurrency in [10, 50] {
        let figures = run(
            format!("GET by_chat (50), concurrency {concurrency}"),
            args.requests,
            concurrency,
            limit,
            |n| {
                let chat = chats[n * 7919 % chats.len()];
                let request = client
                    .get(format!("{base}/api/messages/by_chat/?chat_id={chat}&limit=50"))
                    .header("Authorization", format!("Token {token}"))
                    .send();
                async move { request.await.is_ok_and(|r| r.status().is_success()) }
            },
        )
        .await;
        figures.print();
    }
    if args.ws_clients > 0 {
        let plan = websocket::ClientPlan {
            base: base.clone(),
            token: token.clone(),
            account: account_id,
            secret: SECRET.to_owned(),
            clients: args.ws_clients,
            rounds: args.ws_rounds,
        };
        let (per_connection, delays) = websocket::measure(plan).await?;
        println!();
        println!(
            "WebSocket, {} idle connections: {:.1} KiB resident memory per connection on the server",
            args.ws_clients,
            per_connection / 1024.0
        );
        println!(
            "WebSocket, webhook 200 → new_message at all {} clients ({} messages): p50 {:.2} ms, p99 {:.2} ms",
            args.ws_clients,
            delays.len(),
            percentile(&delays, 0.50),
            percentile(&delays, 0.99)
        );
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}
