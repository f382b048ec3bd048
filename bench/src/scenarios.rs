//! The scenarios over the running server, and the report they fill: the main table (one row per scenario),
//! intake against the bare loop, the paced intake, replies, memory and WebSocket figures.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::inbox::Courier;
use crm_store::entity::events;
use crm_store::{Backend, Store};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Statement};

use crate::Args;
use crate::bare::{Bare, Template};
use crate::fake_bot_api::FakeBotApi;
use crate::load;
use crate::replies::{self, Plan};
use crate::report::{self, Answer, Figures, progress, resident};
use crate::seed::{SECRET, Seeded};
use crate::traffic::{Traffic, Update};
use crate::websocket;

/// Telegram's header carrying the webhook secret.
const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";
/// Open-loop requests that may wait for an answer at once.
const MAX_IN_FLIGHT: usize = 5_000;
/// Latency the paced intake should keep its p99 under, in milliseconds.
const PACED_P99_TARGET_MS: f64 = 50.0;

/// What the run printed, section by section.
#[derive(Default)]
pub struct Report {
    title: Vec<String>,
    rows: Vec<String>,
    notes: Vec<String>,
    ratios: Vec<String>,
    paced: Vec<String>,
    replies: Vec<String>,
    memory: Vec<String>,
    ws: Vec<String>,
}

impl Report {
    /// Names the database.
    pub async fn title(&mut self, store: &Store) {
        let query = match store.backend() {
            Backend::Sqlite => "SELECT sqlite_version()",
            Backend::MySql => "SELECT VERSION()",
            Backend::Postgres => "SHOW server_version",
        };
        let version = store
            .db()
            .query_one_raw(Statement::from_string(store.db_backend(), query))
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get_by_index::<String>(0).ok())
            .unwrap_or_default();
        self.title
            .push(format!("## crm-bench: {} {version}", store.backend().as_str()));
    }

    fn add(&mut self, figures: &Figures) {
        let row = figures.row();
        progress(&row);
        self.rows.push(row);
        self.notes.extend(figures.notes());
    }

    fn note(&mut self, note: String) {
        progress(&note);
        self.notes.push(note);
    }

    /// Prints every section on standard output.
    pub fn print(&self) {
        let mut out = self.title.clone();
        out.push(String::new());
        out.push(report::header());
        out.extend(self.rows.iter().cloned());
        if !self.notes.is_empty() {
            out.push(String::new());
            out.extend(self.notes.iter().map(|n| format!("- {n}")));
        }
        for (heading, lines) in [
            ("Intake against the bare loop", &self.ratios),
            ("Paced intake", &self.paced),
            ("Replies", &self.replies),
            ("Memory", &self.memory),
            ("WebSocket", &self.ws),
        ] {
            if !lines.is_empty() {
                out.push(String::new());
                out.push(format!("### {heading}"));
                out.push(String::new());
                out.extend(lines.iter().cloned());
            }
        }
        println!("{}", out.join("\n"));
    }
}

/// The running benchmark.
pub struct Bench<'a> {
    /// Command line.
    pub args: &'a Args,
    /// The server's store.
    pub store: Store,
    /// HTTP client.
    pub client: reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An admin's API token.
    pub token: String,
    /// The seeded account and chats.
    pub seeded: Seeded,
    /// The webhook traffic generator.
    pub traffic: Arc<Traffic>,
    /// What is printed at the end.
    pub report: Report,
}

/// Latency and rate of one run, for comparisons.
#[derive(Debug, Clone, Copy)]
struct Rate {
    per_second: f64,
    what: &'static str,
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "missed" }
}

impl Bench<'_> {
    fn limit(&self) -> Duration {
        Duration::from_secs(self.args.time_limit)
    }

    /// A webhook call with Telegram's secret header.
    fn webhook(&self, update: Update) -> impl Future<Output = Answer> + Send + 'static {
        let request = self
            .client
            .post(format!(
                "{}/api/webhook/bot/{}/",
                self.base, self.seeded.account_id
            ))
            .header(SECRET_HEADER, SECRET)
            .json(&update.body())
            .send();
        async move { Answer::of(request.await).await }
    }

    /// Waits (up to 30 s) until the relay has numbered every committed event, so one scenario's tail does not
    /// run into the next.
    async fn settle(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let pending = events::Entity::find()
                .filter(events::Column::Seq.is_null())
                .count(self.store.db())
                .await
                .unwrap_or(0);
            if pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        progress("events still unnumbered after 30 s");
    }

    /// Closed-loop intake at each concurrency, each followed by the bare loop (on SQLite once, single writer).
    pub async fn intake(&mut self) -> anyhow::Result<()> {
        let backend = self.store.backend();
        let target = if backend == Backend::Sqlite {
            5_000.0
        } else {
            2_000.0
        };
        let requests = self.args.intake_requests;
        let mut single_writer: Option<Rate> = None;
        self.report.ratios.push(format!(
            "| {:<30} | {:>9} | {:<34} | {:>5} | {:<30} |\n|{:-<32}|{:->11}|{:-<36}|{:->7}|{:-<32}|",
            "intake", "updates/s", "bare loop, same database", "ratio", "targets", "", "", "", "", ""
        ));
        for &concurrency in &self.args.concurrency {
            let name = format!("webhook intake, concurrency {concurrency}");
            progress(format!("{name}: {requests} updates"));
            let figures = load::closed(name.clone(), requests, concurrency, self.limit(), |n| {
                self.webhook(self.traffic.update(n))
            })
            .await;
            self.report.add(&figures);
            self.settle().await;
            let intake = figures.ok_rate();
            if self.args.no_bare {
                continue;
            }
            let bare = match (backend, single_writer) {
                (Backend::Sqlite, Some(rate)) => rate,
                (Backend::Sqlite, None) => {
                    let rate = self.bare(1, "single writer").await?;
                    single_writer = Some(rate);
                    rate
                }
                _ => self.bare(concurrency, "same concurrency").await?,
            };
            let ratio = intake / bare.per_second.max(1e-9);
            self.report.ratios.push(format!(
                "| {:<30} | {:>9.0} | {:<34} | {:>5.2} | {:<30} |",
                name,
                intake,
                format!("{:.0} txn/s ({})", bare.per_second, bare.what),
                ratio,
                format!(
                    "≥ {target:.0}/s {}, ≥ 0.5× {}",
                    verdict(intake >= target),
                    verdict(ratio >= 0.5)
                ),
            ));
        }
        Ok(())
    }

    /// The bare loop with `concurrency` workers.
    async fn bare(&mut self, concurrency: usize, what: &'static str) -> anyhow::Result<Rate> {
        let template = Template::read(&self.store).await?;
        let bare = Bare::new(self.store.clone(), self.seeded.account_id, template);
        let requests = self.args.intake_requests;
        let name = format!("bare SQL loop, concurrency {concurrency}");
        progress(format!("{name}: {requests} updates"));
        let figures = load::closed(name, requests, concurrency, self.limit(), |n| {
            let bare = Arc::clone(&bare);
            let update = self.traffic.update(n);
            async move { bare.store(update).await }
        })
        .await;
        self.report.add(&figures);
        if bare.conflicts() > 0 {
            self.report.note(format!(
                "bare SQL loop, concurrency {concurrency}: {} transactions ran again after a deadlock or busy error",
                bare.conflicts()
            ));
        }
        self.settle().await;
        Ok(Rate {
            per_second: figures.ok_rate(),
            what,
        })
    }

    /// Intake at a fixed rate, timed from when each update was due.
    pub async fn paced(&mut self) {
        let rate = self.args.paced_rate;
        let seconds = self.args.paced_seconds;
        let name = format!("webhook intake, paced {rate}/s");
        progress(format!("{name} for {seconds} s"));
        let figures = load::paced(
            name.clone(),
            rate,
            Duration::from_secs(seconds),
            self.limit(),
            MAX_IN_FLIGHT,
            |n| self.webhook(self.traffic.update(n)),
        )
        .await;
        self.report.add(&figures);
        let p99 = figures.quantile_ms(0.99);
        self.report.paced.push(format!(
            "{name} for {seconds} s: {} updates answered in {:.1} s ({:.0}/s), p50 {:.2} ms, p99 {p99:.2} ms \
             (target p99 ≤ {PACED_P99_TARGET_MS:.0} ms: {}), non-2xx {}, not sent {}",
            figures.latencies.len(),
            figures.elapsed.as_secs_f64(),
            figures.rate(),
            figures.quantile_ms(0.50),
            verdict(p99 <= PACED_P99_TARGET_MS),
            figures.non_2xx(),
            figures.skipped,
        ));
        self.settle().await;
    }

    /// The chat list (pages 1–20) and chat history (newest 50 of a chat).
    pub async fn reads(&mut self) {
        let chats = &self.seeded.chat_ids;
        // The list has 50 chats a page: pages 1–20, or fewer when fewer chats were seeded.
        let pages = (chats.len() / 50).clamp(1, 20);
        for &concurrency in &self.args.concurrency {
            let name = format!("GET /api/chats/, concurrency {concurrency}");
            progress(&name);
            let figures = load::closed(name, self.args.requests, concurrency, self.limit(), |n| {
                let request = self
                    .client
                    .get(format!("{}/api/chats/?page={}", self.base, n % pages + 1))
                    .header("Authorization", format!("Token {}", self.token))
                    .send();
                async move { Answer::of(request.await).await }
            })
            .await;
            self.report.add(&figures);
        }
        for &concurrency in &self.args.concurrency {
            let name = format!("GET by_chat (50), concurrency {concurrency}");
            progress(&name);
            let figures = load::closed(name, self.args.requests, concurrency, self.limit(), |n| {
                let chat = chats.get(n * 7919 % chats.len().max(1)).copied().unwrap_or(0);
                let request = self
                    .client
                    .get(format!(
                        "{}/api/messages/by_chat/?chat_id={chat}&limit=50",
                        self.base
                    ))
                    .header("Authorization", format!("Token {}", self.token))
                    .send();
                async move { Answer::of(request.await).await }
            })
            .await;
            self.report.add(&figures);
        }
    }

    /// Replies through the API, sent by the job runner to the fake Bot API.
    pub async fn replies(&mut self, courier: Arc<Courier>, fake: &FakeBotApi) {
        let concurrency = 10;
        progress(format!(
            "replies via API, concurrency {concurrency}: {}",
            self.args.replies
        ));
        let plan = Plan {
            client: &self.client,
            base: &self.base,
            token: &self.token,
            store: &self.store,
            courier,
            fake,
            chats: &self.seeded.chat_ids,
        };
        let done = replies::run(plan, self.args.replies, concurrency, self.limit()).await;
        self.report.add(&done.figures);
        let accepted = done.figures.latencies.len() - done.figures.non_2xx();
        let r = &mut self.report.replies;
        r.push(
            "| accepted (201) | sendMessage calls | texts sent twice | sent | failed | still queued | unconfirmed | drained in |"
                .into(),
        );
        r.push("|---:|---:|---:|---:|---:|---:|---:|---:|".into());
        r.push(format!(
            "| {accepted} | {} | {} | {} | {} | {} | {} | {:.1} s |",
            done.seen.send_message,
            done.seen.duplicates,
            done.sent,
            done.failed,
            done.queued,
            done.unconfirmed,
            done.drained_in.as_secs_f64()
        ));
        if done.seen.send_message != accepted as u64 || done.seen.duplicates > 0 {
            self.report.note(format!(
                "replies: {accepted} accepted but the Bot API saw {} sendMessage calls ({} duplicates)",
                done.seen.send_message, done.seen.duplicates
            ));
        }
        if done.seen.other > 0 {
            self.report.note(format!(
                "replies: {} Bot API calls of other methods",
                done.seen.other
            ));
        }
    }

    /// The process's resident memory after the HTTP load.
    pub fn memory(&mut self) {
        if let Some((now, peak)) = resident() {
            let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
            let line = format!(
                "Resident memory of the process (server and HTTP load generator) after the HTTP scenarios: {:.1} MiB (peak {:.1} MiB)",
                mib(now),
                mib(peak)
            );
            progress(&line);
            self.report.memory.push(line);
        }
    }

    /// 1,000 WebSocket connections: memory per idle connection and the delay from a webhook to all of them.
    pub async fn websocket(&mut self) -> anyhow::Result<()> {
        progress(format!("WebSocket: opening {} connections", self.args.ws_clients));
        let plan = websocket::ClientPlan {
            base: self.base.clone(),
            token: self.token.clone(),
            account: self.seeded.account_id,
            secret: SECRET.to_owned(),
            clients: self.args.ws_clients,
            rounds: self.args.ws_rounds,
            first_id: 900_000_000,
        };
        let (per_connection, mut delays) = websocket::measure(plan).await?;
        delays.sort_by(f64::total_cmp);
        let lines = [
            format!(
                "{} idle connections: {:.1} KiB resident memory per connection on the server",
                self.args.ws_clients,
                per_connection / 1024.0
            ),
            format!(
                "webhook 200 → new_message at all {} clients ({} messages): p50 {:.2} ms, p99 {:.2} ms",
                self.args.ws_clients,
                delays.len(),
                report::quantile(&delays, 0.50),
                report::quantile(&delays, 0.99)
            ),
        ];
        for line in lines {
            progress(&line);
            self.report.ws.push(line);
        }
        Ok(())
    }
}
